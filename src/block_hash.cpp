#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

#include <kvevents/block_hash.h>

#include "hex.h"

namespace kvevents {

struct BlockHash::LongDigest {
    std::array<std::uint8_t, kMaxDigestSize> bytes;
    std::uint8_t size;
};

namespace {

std::uint64_t big_endian_tail(const std::uint8_t* data, std::size_t size) {
    std::uint64_t key = 0;
    for (std::size_t i = size > 8 ? size - 8 : 0; i < size; ++i) {
        key = (key << 8) | data[i];
    }
    return key;
}

}  // namespace

std::size_t BlockHash::long_digest_heap_bytes() {
    return sizeof(LongDigest);
}

BlockHash BlockHash::from_digest(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > kMaxDigestSize) {
        throw std::invalid_argument("BlockHash digest must be 1 to 32 bytes, got " +
                                    std::to_string(size));
    }
    BlockHash h;
    if (size <= 8) {
        std::memcpy(&h.bits_, data, size);
        h.tag_ = kShortDigestTag + size - 1;
        return h;
    }
    auto* digest = new LongDigest;
    std::memcpy(digest->bytes.data(), data, size);
    digest->size = static_cast<std::uint8_t>(size);
    h.bits_ = big_endian_tail(data, size);  // cached: the routing key is read far more often
    h.tag_ = reinterpret_cast<std::uintptr_t>(digest);
    return h;
}

BlockHash::BlockHash(const BlockHash& other) : bits_(other.bits_), tag_(other.tag_) {
    if (other.is_long_digest()) {
        tag_ = reinterpret_cast<std::uintptr_t>(new LongDigest(*other.long_digest()));
    }
}

BlockHash& BlockHash::operator=(const BlockHash& other) {
    if (this != &other) {
        BlockHash copy(other);
        *this = std::move(copy);
    }
    return *this;
}

BlockHash& BlockHash::operator=(BlockHash&& other) noexcept {
    if (this != &other) {
        if (is_long_digest())
            delete_long_digest();
        bits_ = other.bits_;
        tag_ = other.tag_;
        other.tag_ = kUnsignedTag;
    }
    return *this;
}

void BlockHash::delete_long_digest() noexcept {
    delete long_digest();
    tag_ = kUnsignedTag;
}

std::uint64_t BlockHash::to_u64() const {
    if (is_integer() || is_long_digest())
        return bits_;
    return big_endian_tail(digest_data(), digest_size());
}

const std::uint8_t* BlockHash::digest_data() const {
    if (is_long_digest())
        return long_digest()->bytes.data();
    return reinterpret_cast<const std::uint8_t*>(&bits_);
}

std::size_t BlockHash::digest_size() const {
    if (is_long_digest())
        return long_digest()->size;
    return is_digest() ? static_cast<std::size_t>(tag_ - kShortDigestTag + 1) : 0;
}

std::string BlockHash::to_string() const {
    if (is_integer()) {
        return is_negative() ? std::to_string(static_cast<std::int64_t>(bits_))
                             : std::to_string(bits_);
    }
    std::string out;
    detail::append_hex(out, digest_data(), digest_size());
    return out;
}

bool operator==(const BlockHash& a, const BlockHash& b) {
    if (a.is_integer() || b.is_integer())
        return a.is_integer() == b.is_integer() && a.bits_ == b.bits_;
    const std::size_t size = a.digest_size();
    return size == b.digest_size() && std::memcmp(a.digest_data(), b.digest_data(), size) == 0;
}

bool operator<(const BlockHash& a, const BlockHash& b) {
    if (a.is_integer() != b.is_integer())
        return a.is_integer();
    if (a.is_integer())
        return a.bits_ < b.bits_;
    return std::lexicographical_compare(a.digest_data(), a.digest_data() + a.digest_size(),
                                        b.digest_data(), b.digest_data() + b.digest_size());
}

}  // namespace kvevents

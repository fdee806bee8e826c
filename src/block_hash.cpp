#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include <kvevents/block_hash.h>

#include "hex.h"

namespace kvevents {

BlockHash BlockHash::from_digest(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > kMaxDigestSize) {
        throw std::invalid_argument("BlockHash digest must be 1 to 32 bytes, got " +
                                    std::to_string(size));
    }
    BlockHash h;
    h.kind_ = Kind::kDigest;
    h.size_ = static_cast<std::uint8_t>(size);
    std::memcpy(h.bytes_.data(), data, size);
    h.bits_ = 0;
    // Cache the routing key: the last 8 bytes, big-endian, as vLLM's int mode computes it.
    for (std::size_t i = size > 8 ? size - 8 : 0; i < size; ++i) {
        h.bits_ = (h.bits_ << 8) | data[i];
    }
    return h;
}

std::uint64_t BlockHash::to_u64() const {
    return bits_;
}

std::string BlockHash::to_string() const {
    if (is_integer()) {
        return negative_ ? std::to_string(static_cast<std::int64_t>(bits_)) : std::to_string(bits_);
    }
    std::string out;
    detail::append_hex(out, bytes_.data(), size_);
    return out;
}

bool operator==(const BlockHash& a, const BlockHash& b) {
    if (a.kind_ != b.kind_)
        return false;
    if (a.is_integer())
        return a.bits_ == b.bits_;
    return a.size_ == b.size_ && std::memcmp(a.bytes_.data(), b.bytes_.data(), a.size_) == 0;
}

bool operator<(const BlockHash& a, const BlockHash& b) {
    if (a.kind_ != b.kind_)
        return a.is_integer();
    if (a.is_integer())
        return a.bits_ < b.bits_;
    return std::lexicographical_compare(a.bytes_.begin(), a.bytes_.begin() + a.size_,
                                        b.bytes_.begin(), b.bytes_.begin() + b.size_);
}

std::size_t BlockHash::hash_value() const {
    // The key is already a well-mixed hash; fold in the kind so a digest and an integer with the
    // same low bits do not always collide.
    const std::uint64_t mixed = bits_ ^ (is_digest() ? 0x9e3779b97f4a7c15ULL : 0);
    return static_cast<std::size_t>(mixed);
}

}  // namespace kvevents

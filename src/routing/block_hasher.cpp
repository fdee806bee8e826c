#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <openssl/sha.h>

#include <kvevents/block_hasher.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "../hex.h"
#include "block_serialization.h"

namespace kvevents {

namespace {

bool uses_cbor(HashAlgorithm algorithm) {
    return algorithm == HashAlgorithm::kSha256Cbor || algorithm == HashAlgorithm::kXxhashCbor;
}

bool uses_sha256(HashAlgorithm algorithm) {
    return algorithm == HashAlgorithm::kSha256 || algorithm == HashAlgorithm::kSha256Cbor;
}

constexpr HashAlgorithm kAlgorithms[] = {HashAlgorithm::kSha256, HashAlgorithm::kSha256Cbor,
                                         HashAlgorithm::kXxhash, HashAlgorithm::kXxhashCbor};

}  // namespace

const char* to_string(HashAlgorithm algorithm) {
    switch (algorithm) {
        case HashAlgorithm::kSha256:
            return "sha256";
        case HashAlgorithm::kSha256Cbor:
            return "sha256_cbor";
        case HashAlgorithm::kXxhash:
            return "xxhash";
        case HashAlgorithm::kXxhashCbor:
            return "xxhash_cbor";
    }
    return "unknown";
}

std::optional<HashAlgorithm> hash_algorithm_from_name(std::string_view name) {
    for (const HashAlgorithm a : kAlgorithms) {
        if (name == to_string(a))
            return a;
    }
    return std::nullopt;
}

// --- BlockDigest --------------------------------------------------------------------------------

BlockDigest::BlockDigest(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > kMaxSize)
        throw std::invalid_argument("a block digest has 1 to 32 bytes, not " +
                                    std::to_string(size));
    std::memcpy(bytes_.data(), data, size);
    size_ = static_cast<std::uint8_t>(size);
}

std::uint64_t BlockDigest::to_u64() const {
    std::uint64_t v = 0;
    const std::size_t from = size_ > 8 ? size_ - 8 : 0;
    for (std::size_t i = from; i < size_; ++i) v = (v << 8) | bytes_[i];
    return v;
}

BlockHash BlockDigest::to_block_hash() const {
    return BlockHash::from_digest(bytes_.data(), size_);
}

std::string BlockDigest::to_hex() const {
    std::string out;
    detail::append_hex(out, bytes_.data(), size_);
    return out;
}

bool operator==(const BlockDigest& a, const BlockDigest& b) {
    return a.size_ == b.size_ && std::memcmp(a.bytes_.data(), b.bytes_.data(), a.size_) == 0;
}

// --- BlockHasher --------------------------------------------------------------------------------

BlockHasher::BlockHasher(HashAlgorithm algorithm, std::string seed, std::size_t block_size)
    : algorithm_(algorithm), seed_(std::move(seed)), block_size_(block_size) {
    if (block_size_ == 0 || block_size_ > kMaxBlockSize)
        throw std::invalid_argument("block size must be 1 to " + std::to_string(kMaxBlockSize) +
                                    ", not " + std::to_string(block_size_));
    if (hash_algorithm_from_name(to_string(algorithm_)) != algorithm_)
        throw std::invalid_argument("unknown hash algorithm");
    std::string bytes;
    if (uses_cbor(algorithm_))
        detail::cbor_string(seed_, bytes);
    else
        detail::pickle_string(seed_, bytes);
    none_hash_ = digest(bytes);
}

BlockDigest BlockHasher::digest(const std::string& bytes) const {
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    if (uses_sha256(algorithm_)) {
        unsigned char out[SHA256_DIGEST_LENGTH];
        SHA256(data, bytes.size(), out);
        return BlockDigest(out, sizeof out);
    }
    XXH128_canonical_t canonical;  // big-endian, as xxhash.xxh3_128_digest gives it
    XXH128_canonicalFromHash(&canonical, XXH3_128bits(data, bytes.size()));
    return BlockDigest(canonical.digest, sizeof canonical.digest);
}

void BlockHasher::serialize_into(const BlockDigest& parent,
                                 const std::int64_t* tokens,
                                 std::size_t count,
                                 const std::vector<Value>* extra_keys,
                                 std::string& out) const {
    if (count > block_size_)
        throw std::invalid_argument("a block of " + std::to_string(count) +
                                    " tokens, above the block size of " +
                                    std::to_string(block_size_));
    const detail::BlockValue block{parent.data(), parent.size(), tokens, count, extra_keys};
    if (uses_cbor(algorithm_))
        detail::cbor_block(block, out);
    else
        detail::pickle_block(block, out);
}

std::string BlockHasher::serialize_block(const BlockDigest* parent,
                                         const std::int64_t* tokens,
                                         std::size_t count,
                                         const std::vector<Value>* extra_keys) const {
    std::string out;
    serialize_into(parent != nullptr ? *parent : none_hash_, tokens, count, extra_keys, out);
    return out;
}

BlockDigest BlockHasher::hash_block(const BlockDigest* parent,
                                    const std::int64_t* tokens,
                                    std::size_t count,
                                    const std::vector<Value>* extra_keys) const {
    std::string bytes;
    serialize_into(parent != nullptr ? *parent : none_hash_, tokens, count, extra_keys, bytes);
    return digest(bytes);
}

std::vector<Value> BlockHasher::block_extra_keys(const RequestKeys& keys,
                                                 std::size_t block_index) const {
    std::vector<Value> out;
    if (keys.lora_name)
        out.push_back(Value::string(*keys.lora_name));
    const auto start = static_cast<std::int64_t>(block_index * block_size_);
    const auto end = start + static_cast<std::int64_t>(block_size_);
    // vLLM walks the sorted inputs: past ones are skipped, each one the block reaches is named,
    // and the walk stops at one that goes on beyond the block (later ones start after it).
    for (const MultimodalInput& input : keys.multimodal) {
        if (end <= input.offset)
            break;
        if (start >= input.offset + input.length)
            continue;
        Value named;
        named.kind = Value::Kind::kArray;
        named.items.push_back(Value::string(input.identifier));
        named.items.push_back(Value::signed_integer(input.offset - start));
        out.push_back(std::move(named));
        if (end < input.offset + input.length)
            break;
    }
    if (block_index == 0 && keys.cache_salt && !keys.cache_salt->empty())
        out.push_back(Value::string(*keys.cache_salt));
    return out;
}

std::vector<BlockDigest> BlockHasher::hash_prompt(const std::int64_t* tokens,
                                                  std::size_t count,
                                                  const RequestKeys& keys) const {
    const bool any_keys = keys.lora_name || keys.cache_salt || !keys.multimodal.empty();
    std::vector<BlockDigest> out;
    out.reserve(count / block_size_);
    std::string bytes;
    std::vector<Value> extra;
    for (std::size_t block = 0; (block + 1) * block_size_ <= count; ++block) {
        if (any_keys)
            extra = block_extra_keys(keys, block);
        serialize_into(out.empty() ? none_hash_ : out.back(), tokens + block * block_size_,
                       block_size_, any_keys ? &extra : nullptr, bytes);
        out.push_back(digest(bytes));
    }
    return out;
}

std::vector<BlockDigest> BlockHasher::hash_prompt(const std::vector<std::int64_t>& tokens,
                                                  const RequestKeys& keys) const {
    return hash_prompt(tokens.data(), tokens.size(), keys);
}

std::vector<std::uint64_t> BlockHasher::prompt_keys(const std::vector<std::int64_t>& tokens,
                                                    const RequestKeys& keys) const {
    const std::vector<BlockDigest> digests = hash_prompt(tokens, keys);
    std::vector<std::uint64_t> out;
    out.reserve(digests.size());
    for (const BlockDigest& d : digests) out.push_back(d.to_u64());
    return out;
}

}  // namespace kvevents

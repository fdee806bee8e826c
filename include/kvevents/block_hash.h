#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace kvevents {

/// One block hash exactly as a publisher sent it: either a 64-bit msgpack integer or the raw
/// digest bytes (vLLM with VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0 sends 32- or 16-byte digests).
///
/// Integers keep their sign for display: vLLM sends unsigned values (up to 2^64-1), SGLang and
/// TensorRT-LLM send signed int64. Equality, ordering and hashing use the 64-bit two's-complement
/// pattern, so the same 64 bits compare equal whichever way they were encoded.
class BlockHash {
public:
    /// Longest digest held; sha256 is the longest vLLM uses.
    static constexpr std::size_t kMaxDigestSize = 32;

    enum class Kind : std::uint8_t { kInteger, kDigest };

    BlockHash() = default;

    static BlockHash from_unsigned(std::uint64_t value) {
        BlockHash h;
        h.bits_ = value;
        return h;
    }
    static BlockHash from_signed(std::int64_t value) {
        BlockHash h;
        h.bits_ = static_cast<std::uint64_t>(value);
        h.negative_ = value < 0;
        return h;
    }
    /// Throws std::invalid_argument when size is 0 or above kMaxDigestSize.
    static BlockHash from_digest(const std::uint8_t* data, std::size_t size);

    Kind kind() const { return kind_; }
    bool is_integer() const { return kind_ == Kind::kInteger; }
    bool is_digest() const { return kind_ == Kind::kDigest; }
    /// True for an integer that was sent negative (signed msgpack form with a value below 0).
    bool is_negative() const { return negative_; }

    /// The 64-bit routing key, matching vLLM's int mode for the same block: for integers the
    /// two's-complement bit pattern; for digests the last 8 bytes read big-endian (all bytes when
    /// the digest is shorter than 8).
    std::uint64_t to_u64() const;

    /// Digest bytes (empty for integers).
    const std::uint8_t* digest_data() const { return bytes_.data(); }
    std::size_t digest_size() const { return is_digest() ? size_ : 0; }

    /// Integers in decimal, exactly as sent (negatives keep their sign); digests as lowercase hex.
    std::string to_string() const;

    friend bool operator==(const BlockHash& a, const BlockHash& b);
    friend bool operator!=(const BlockHash& a, const BlockHash& b) { return !(a == b); }
    /// Integers order before digests; integers by bit pattern, digests bytewise then by length.
    friend bool operator<(const BlockHash& a, const BlockHash& b);

    std::size_t hash_value() const;

private:
    std::uint64_t bits_ = 0;  // integer bit pattern
    std::array<std::uint8_t, kMaxDigestSize> bytes_{};
    std::uint8_t size_ = 0;  // digest length
    Kind kind_ = Kind::kInteger;
    bool negative_ = false;
};

}  // namespace kvevents

template <>
struct std::hash<kvevents::BlockHash> {
    std::size_t operator()(const kvevents::BlockHash& h) const noexcept { return h.hash_value(); }
};

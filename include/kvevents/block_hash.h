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
    BlockHash(const BlockHash& other);
    BlockHash(BlockHash&& other) noexcept : bits_(other.bits_), tag_(other.tag_) {
        other.tag_ = kUnsignedTag;
    }
    BlockHash& operator=(const BlockHash& other);
    BlockHash& operator=(BlockHash&& other) noexcept;
    ~BlockHash() {
        if (is_long_digest())
            delete_long_digest();
    }

    static BlockHash from_unsigned(std::uint64_t value) {
        BlockHash h;
        h.bits_ = value;
        return h;
    }
    static BlockHash from_signed(std::int64_t value) {
        BlockHash h;
        h.bits_ = static_cast<std::uint64_t>(value);
        h.tag_ = value < 0 ? kNegativeTag : kUnsignedTag;
        return h;
    }
    /// Throws std::invalid_argument when size is 0 or above kMaxDigestSize.
    static BlockHash from_digest(const std::uint8_t* data, std::size_t size);

    Kind kind() const { return is_digest() ? Kind::kDigest : Kind::kInteger; }
    bool is_integer() const { return tag_ <= kNegativeTag; }
    bool is_digest() const { return !is_integer(); }
    /// True for an integer that was sent negative (signed msgpack form with a value below 0).
    bool is_negative() const { return tag_ == kNegativeTag; }

    /// The 64-bit routing key, matching vLLM's int mode for the same block: for integers the
    /// two's-complement bit pattern; for digests the last 8 bytes read big-endian (all bytes when
    /// the digest is shorter than 8).
    std::uint64_t to_u64() const;

    /// Digest bytes (empty for integers); valid while this hash lives unchanged.
    const std::uint8_t* digest_data() const;
    std::size_t digest_size() const;

    /// Integers in decimal, exactly as sent (negatives keep their sign); digests as lowercase hex.
    std::string to_string() const;

    friend bool operator==(const BlockHash& a, const BlockHash& b);
    friend bool operator!=(const BlockHash& a, const BlockHash& b) { return !(a == b); }
    /// Integers order before digests; integers by bit pattern, digests bytewise then by length.
    friend bool operator<(const BlockHash& a, const BlockHash& b);

    std::size_t hash_value() const { return static_cast<std::size_t>(to_u64() ^ kind_salt()); }

    /// Heap bytes one digest longer than 8 bytes owns (integers and short digests own none).
    static std::size_t long_digest_heap_bytes();

private:
    struct LongDigest;

    // tag_ is a small code or, for digests longer than 8 bytes, the address of their LongDigest.
    // Integers and digests of up to 8 bytes (whose bytes bits_ holds, in order) need no heap.
    static constexpr std::uintptr_t kUnsignedTag = 0;
    static constexpr std::uintptr_t kNegativeTag = 1;
    static constexpr std::uintptr_t kShortDigestTag = 2;  // + size - 1, for sizes 1..8
    static constexpr std::uintptr_t kLastCodeTag = kShortDigestTag + 7;

    bool is_long_digest() const { return tag_ > kLastCodeTag; }
    // The tag holds the pointer itself when it is above the codes: a tagged pointer by design.
    // NOLINTNEXTLINE(performance-no-int-to-ptr)
    const LongDigest* long_digest() const { return reinterpret_cast<const LongDigest*>(tag_); }
    std::uint64_t kind_salt() const { return is_digest() ? 0x9e3779b97f4a7c15ULL : 0; }
    void delete_long_digest() noexcept;

    std::uint64_t bits_ = 0;  // integer bit pattern, short digest bytes, or long digest's key
    std::uintptr_t tag_ = kUnsignedTag;
};

}  // namespace kvevents

template <>
struct std::hash<kvevents::BlockHash> {
    std::size_t operator()(const kvevents::BlockHash& h) const noexcept { return h.hash_value(); }
};

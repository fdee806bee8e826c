#pragma once

// A prompt's block hashes, computed byte for byte as vLLM computes them, so that a gateway can
// look a prompt up in what the engines publish. Part of kvevents::routing.
//
// vLLM hashes block i as hash_fn((parent, tuple(block_tokens), extra_keys)), where parent is
// block i-1's digest, or for block 0 NONE_HASH = hash_fn(PYTHONHASHSEED as a string). When
// PYTHONHASHSEED is unset, vLLM draws NONE_HASH at random and nobody else can reproduce its
// hashes: set it (to the same value) on every engine, and give the same value here.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kvevents/block_hash.h>
#include <kvevents/value.h>

namespace kvevents {

/// vLLM's --prefix-caching-hash-algo choices: a serialisation, then a digest.
enum class HashAlgorithm : std::uint8_t {
    kSha256,      // pickle protocol 5, SHA-256
    kSha256Cbor,  // canonical CBOR, SHA-256
    kXxhash,      // pickle protocol 5, XXH3-128
    kXxhashCbor,  // canonical CBOR, XXH3-128
};

/// vLLM's name for the algorithm ("sha256", "sha256_cbor", "xxhash", "xxhash_cbor").
const char* to_string(HashAlgorithm algorithm);
/// The algorithm of that name; nullopt for any other.
std::optional<HashAlgorithm> hash_algorithm_from_name(std::string_view name);

/// One block's digest as vLLM keeps it: 32 bytes (SHA-256) or 16 (XXH3-128).
class BlockDigest {
public:
    static constexpr std::size_t kMaxSize = 32;

    BlockDigest() = default;
    /// Throws std::invalid_argument when size is 0 or above kMaxSize.
    BlockDigest(const std::uint8_t* data, std::size_t size);

    const std::uint8_t* data() const { return bytes_.data(); }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

    /// The 64-bit form vLLM publishes by default (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=1): the
    /// digest's last 8 bytes read big-endian.
    std::uint64_t to_u64() const;
    /// The whole digest as a wire hash, as vLLM publishes it with
    /// VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0.
    BlockHash to_block_hash() const;
    /// Lowercase hex.
    std::string to_hex() const;

    friend bool operator==(const BlockDigest& a, const BlockDigest& b);
    friend bool operator!=(const BlockDigest& a, const BlockDigest& b) { return !(a == b); }

private:
    std::array<std::uint8_t, kMaxSize> bytes_{};
    std::uint8_t size_ = 0;
};

/// A multimodal input of a prompt: `identifier` is vLLM's hash of the item (its mm hash), and the
/// item's placeholder covers tokens [offset, offset + length).
struct MultimodalInput {
    std::string identifier;
    std::int64_t offset = 0;
    std::int64_t length = 0;
};

/// What of a request, besides its tokens, vLLM mixes into its block hashes.
struct RequestKeys {
    /// The LoRA adapter's name, for requests to an adapter; in every block's keys.
    std::optional<std::string> lora_name;
    /// The request's cache_salt; in the first block's keys only. Empty counts as none, as in vLLM.
    std::optional<std::string> cache_salt;
    /// Sorted by offset and not overlapping, as vLLM keeps them. A block's keys name each input
    /// it overlaps, with the input's offset from the block's first token.
    std::vector<MultimodalInput> multimodal;
};

/// Computes vLLM's block hashes. Immutable after construction, so one hasher may be used from
/// any number of threads at once.
class BlockHasher {
public:
    /// `seed` is the engines' PYTHONHASHSEED, as the string they have (for example "0").
    /// Throws std::invalid_argument when block_size is 0 or above kMaxBlockSize.
    BlockHasher(HashAlgorithm algorithm, std::string seed, std::size_t block_size);

    /// Past this, a block's pickle would span several pickle frames, which is not reproduced.
    /// vLLM's block sizes are far below it.
    static constexpr std::size_t kMaxBlockSize = 8192;

    HashAlgorithm algorithm() const { return algorithm_; }
    const std::string& seed() const { return seed_; }
    std::size_t block_size() const { return block_size_; }
    /// NONE_HASH: what block 0 takes as its parent.
    const BlockDigest& none_hash() const { return none_hash_; }

    /// The digest of each full block of `tokens`, in order; a partial last block has none.
    /// Throws std::invalid_argument for keys that cannot be serialised (see hash_block()).
    std::vector<BlockDigest> hash_prompt(const std::vector<std::int64_t>& tokens,
                                         const RequestKeys& keys = {}) const;
    std::vector<BlockDigest> hash_prompt(const std::int64_t* tokens,
                                         std::size_t count,
                                         const RequestKeys& keys = {}) const;
    /// The 64-bit forms of hash_prompt(): what a PrefixIndex is queried with.
    std::vector<std::uint64_t> prompt_keys(const std::vector<std::int64_t>& tokens,
                                           const RequestKeys& keys = {}) const;

    /// The extra keys vLLM gives block `block_index` of a request with `keys`, in vLLM's order:
    /// the LoRA name, each overlapped multimodal input as [identifier, offset from the block's
    /// start], then the cache salt on block 0. Empty means None.
    std::vector<Value> block_extra_keys(const RequestKeys& keys, std::size_t block_index) const;

    /// One block: hash_fn((parent, tuple(tokens), extra_keys)). A null `parent` stands for
    /// NONE_HASH; a null or empty `extra_keys` for None. Extra keys are values as a BlockStored's
    /// extra_keys carry them: strings, byte strings, integers, nil, booleans and arrays (Python
    /// tuples). Throws std::invalid_argument for floats and maps, which vLLM never puts there,
    /// and for more than block_size() tokens.
    BlockDigest hash_block(const BlockDigest* parent,
                           const std::int64_t* tokens,
                           std::size_t count,
                           const std::vector<Value>* extra_keys) const;

    /// The bytes hash_block() digests: vLLM's pickle or canonical CBOR of the block's tuple.
    std::string serialize_block(const BlockDigest* parent,
                                const std::int64_t* tokens,
                                std::size_t count,
                                const std::vector<Value>* extra_keys) const;

private:
    void serialize_into(const BlockDigest& parent,
                        const std::int64_t* tokens,
                        std::size_t count,
                        const std::vector<Value>* extra_keys,
                        std::string& out) const;
    BlockDigest digest(const std::string& bytes) const;

    HashAlgorithm algorithm_;
    std::string seed_;
    std::size_t block_size_;
    BlockDigest none_hash_;
};

}  // namespace kvevents

#pragma once

// Which publisher holds how much of a prompt's prefix, kept current by the KV events. Part of
// kvevents::routing.
//
// Keys are the 64-bit form of block hashes (BlockHash::to_u64, BlockDigest::to_u64), so integer
// and whole-digest hashes of the same block meet. Two different blocks with the same 64-bit key
// are taken to be the same block: with vLLM's digests that is a 2^-64 chance per pair, an
// assumption rather than a failure mode.
//
// Concurrency. Updates may come from any number of threads (a Fleet's loops) while any number of
// threads query. Queries take no lock while they probe: each of the index's shards is a sequence
// lock, so a probe retries if a writer changed that shard meanwhile, and a writer holds a shard
// only for the few stores of one block. So updates never wait for queries, and a query waits for
// an update at most for that long. Consistency: each block's holders are read as they were at
// one moment, never torn; a query spans moments, so a prompt's blocks may be read before and
// after one update.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <kvevents/events.h>

namespace kvevents {

/// Tiers in the order matches count them: a block on the GPU is best, then CPU memory, disk,
/// external storage. Media the index does not know are kept under their own names as tiers 4 to
/// 7, in the order first seen; further names share tier 7.
constexpr std::size_t kMaxTiers = 8;
constexpr std::size_t kGpuTier = 0;
constexpr std::size_t kCpuTier = 1;
constexpr std::size_t kDiskTier = 2;
constexpr std::size_t kExternalTier = 3;

/// One publisher's share of a prompt.
struct PublisherMatch {
    std::string pod_key;
    int data_parallel_rank = 0;
    /// blocks[t]: the leading blocks of the prompt held on tiers 0..t, cumulative from the GPU
    /// down; blocks[kMaxTiers - 1] counts blocks held on any tier.
    std::array<std::uint32_t, kMaxTiers> blocks{};
    /// The publisher's stream lost batches for good since its blocks were last complete: it may
    /// hold blocks the index does not know of, or no longer hold some it lists.
    bool stale = false;

    std::size_t gpu_blocks() const { return blocks[kGpuTier]; }
    std::size_t any_tier_blocks() const { return blocks[kMaxTiers - 1]; }
};

/// One pod's share: each data-parallel rank is a publisher of its own.
struct PodMatch {
    std::string pod_key;
    std::vector<PublisherMatch> ranks;  // by rank; only ranks holding the first block

    /// The most leading blocks one rank holds, on the GPU or on any tier.
    std::size_t longest_gpu_blocks() const;
    std::size_t longest_any_tier_blocks() const;
};

struct PrefixMatch {
    /// Pods holding at least the prompt's first block, by pod key.
    std::vector<PodMatch> pods;
    /// Blocks looked up: one per block until no publisher holds the prefix any further.
    std::size_t blocks_probed = 0;
};

/// How top_k() values a block by the best tier holding it.
struct TierWeights {
    std::array<double, kMaxTiers> weight{1.0, 0.8, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2};
    /// Multiplies the score of a stale publisher.
    double stale_factor = 0.5;
};

struct ScoredPublisher {
    std::string pod_key;
    int data_parallel_rank = 0;
    /// Sum over the leading blocks of the weight of the best tier the publisher holds each on.
    double score = 0;
    std::size_t gpu_blocks = 0;
    std::size_t any_tier_blocks = 0;
    bool stale = false;
};

/// The k best publishers of a match by score, best first; ties by pod key, then rank.
std::vector<ScoredPublisher> top_k(const PrefixMatch& match,
                                   std::size_t k,
                                   const TierWeights& weights = {});

struct IndexedPublisher {
    std::string pod_key;
    int data_parallel_rank = 0;
    std::uint64_t blocks = 0;  // (block, tier set) entries it holds
    bool stale = false;
};

struct PrefixIndexStats {
    std::size_t publishers = 0;
    std::size_t keys = 0;          // distinct blocks held by anyone
    std::size_t entries = 0;       // (block, publisher) pairs, of live publishers
    std::size_t dead_entries = 0;  // of cleared or removed publishers, not yet reclaimed
    std::size_t bytes = 0;         // held by the shards' tables and holder blocks
};

class PrefixIndex {
public:
    struct Options {
        /// Shards (rounded up to a power of two): more lets more writers work at once.
        std::size_t shards = 64;
    };

    PrefixIndex();
    explicit PrefixIndex(Options options);
    ~PrefixIndex();
    PrefixIndex(const PrefixIndex&) = delete;
    PrefixIndex& operator=(const PrefixIndex&) = delete;

    // Updates, from any thread. Calls for one publisher should not overlap (a Fleet never
    // overlaps them); calls for different publishers may.

    /// The publisher holds these blocks on `tier`.
    void store(const std::string& pod_key,
               int data_parallel_rank,
               const std::vector<std::uint64_t>& keys,
               std::size_t tier);
    /// The publisher no longer holds these blocks on `tier`.
    void remove(const std::string& pod_key,
                int data_parallel_rank,
                const std::vector<std::uint64_t>& keys,
                std::size_t tier);
    /// The publisher holds nothing (AllBlocksCleared, a restart): its entries go at once for
    /// queries, their memory as the index sweeps. Its picture is complete again: not stale.
    void clear(const std::string& pod_key, int data_parallel_rank);
    /// The publisher's entries may be wrong (batches lost for good), until clear().
    void mark_stale(const std::string& pod_key, int data_parallel_rank);
    /// Forgets the publisher; its memory is reclaimed as the index sweeps.
    void remove_publisher(const std::string& pod_key, int data_parallel_rank);
    /// Reclaims the memory of cleared and removed publishers' entries now, rather than a little
    /// at each update.
    void sweep();

    /// The tier of a medium: GPU (also when unset), CPU (cpu, pinned), disk (DISK, FS),
    /// external (EXTERNAL, OBJ, STORAGE, SHARED_STORAGE); another name gets a tier of its own.
    std::size_t tier_for(Medium medium, std::string_view medium_name);
    /// "GPU", "CPU", "DISK", "EXTERNAL", or the name a tier above 3 was first seen under ("" if
    /// none yet).
    std::string tier_name(std::size_t tier) const;

    // Queries, from any thread.

    /// Who holds how much of the prompt whose block keys are `keys`, in order.
    PrefixMatch match(const std::vector<std::uint64_t>& keys) const;
    std::vector<IndexedPublisher> publishers() const;
    PrefixIndexStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvevents

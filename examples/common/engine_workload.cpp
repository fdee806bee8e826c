#include "engine_workload.h"

#include <algorithm>

namespace kvevents::cli {
namespace {

constexpr int kBlockSize = 16;

// A chained hash, as vLLM chains a block's hash on its parent's.
std::uint64_t chain(std::uint64_t parent, std::uint64_t token) {
    std::uint64_t h = parent ^ (token * 0x9e3779b97f4a7c15ULL);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

BlockStored EngineWorkload::store() {
    BlockStored ev;
    std::uniform_int_distribution<int> blocks(1, 4);
    std::uint64_t parent = 0;
    if (!cached_.empty() && std::bernoulli_distribution(0.6)(rng_)) {
        // Extend a cached prefix: the new blocks hang off an existing one.
        parent = cached_[std::uniform_int_distribution<std::size_t>(0, cached_.size() - 1)(rng_)];
        ev.parent_block_hash = BlockHash::from_unsigned(parent);
    }
    const int n = blocks(rng_);
    for (int b = 0; b < n; ++b) {
        for (int t = 0; t < kBlockSize; ++t) {
            ev.token_ids.push_back(static_cast<std::int64_t>(next_token_++ % 128000));
        }
        parent = chain(parent, next_token_);
        ev.block_hashes.push_back(BlockHash::from_unsigned(parent));
        cached_.push_back(parent);
    }
    ev.block_size = kBlockSize;
    ev.set_medium("GPU");
    ev.group_idx = 0;
    ev.set_kv_cache_spec_kind("full_attention");
    return ev;
}

BlockRemoved EngineWorkload::evict() {
    BlockRemoved ev;
    const std::size_t n = std::min<std::size_t>(cached_.size(), 2);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t victim =
            std::uniform_int_distribution<std::size_t>(0, cached_.size() - 1)(rng_);
        ev.block_hashes.push_back(BlockHash::from_unsigned(cached_[victim]));
        cached_.erase(cached_.begin() + static_cast<std::ptrdiff_t>(victim));
    }
    ev.set_medium("GPU");
    ev.group_idx = 0;
    return ev;
}

EventBatch EngineWorkload::next_batch(double ts, std::optional<std::size_t> events) {
    EventBatch batch;
    batch.ts = ts;
    if (std::bernoulli_distribution(0.01)(rng_)) {
        batch.events.emplace_back(AllBlocksCleared{});
        cached_.clear();
        if (!events)
            return batch;
    }
    const std::size_t count =
        events ? *events : static_cast<std::size_t>(std::uniform_int_distribution<int>(1, 3)(rng_));
    while (batch.events.size() < count) {
        if (cached_.size() > 64 || (!cached_.empty() && std::bernoulli_distribution(0.3)(rng_))) {
            batch.events.emplace_back(evict());
        } else {
            batch.events.emplace_back(store());
        }
    }
    return batch;
}

}  // namespace kvevents::cli

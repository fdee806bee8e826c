#include "workload.h"

namespace kvevents::bench {

EventBatch realistic_batch(std::uint64_t salt) {
    constexpr int kStores = 6;
    constexpr int kRemoves = 2;
    constexpr int kBlocksPerStore = 4;
    constexpr int kBlockSize = 16;
    EventBatch batch;
    batch.ts = 1700000000.25;
    batch.data_parallel_rank = 0;
    std::uint64_t next_hash = 0x9e3779b97f4a7c15ULL ^ salt;
    std::int64_t next_token = 1000;
    for (int s = 0; s < kStores; ++s) {
        BlockStored ev;
        ev.parent_block_hash = BlockHash::from_unsigned(next_hash);
        for (int b = 0; b < kBlocksPerStore; ++b) {
            next_hash = next_hash * 6364136223846793005ULL + 1442695040888963407ULL;
            ev.block_hashes.push_back(BlockHash::from_unsigned(next_hash | (1ULL << 63)));
            for (int t = 0; t < kBlockSize; ++t) ev.token_ids.push_back(next_token++ % 150000);
        }
        ev.block_size = kBlockSize;
        ev.set_medium("GPU");
        ev.group_idx = 0;
        ev.set_kv_cache_spec_kind("full_attention");
        batch.events.emplace_back(std::move(ev));
    }
    for (int r = 0; r < kRemoves; ++r) {
        BlockRemoved ev;
        ev.block_hashes.push_back(
            BlockHash::from_unsigned(next_hash - static_cast<std::uint64_t>(r)));
        ev.set_medium("GPU");
        ev.group_idx = 0;
        batch.events.emplace_back(std::move(ev));
    }
    return batch;
}

}  // namespace kvevents::bench

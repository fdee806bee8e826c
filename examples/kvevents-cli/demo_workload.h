#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <kvevents/events.h>

namespace kvevents::cli {

/// Generates what a busy vLLM pod publishes: stores of 1-4 blocks of 16 tokens that extend
/// cached prefixes (so parents are real), evictions of stored blocks, and a rare cache reset.
class DemoWorkload {
public:
    explicit DemoWorkload(std::uint64_t seed) : rng_(seed) {}

    EventBatch next_batch(double ts);
    /// The engine restarted: its cache is empty.
    void forget_everything() { cached_.clear(); }

private:
    BlockStored store();
    BlockRemoved evict();

    std::mt19937_64 rng_;
    std::vector<std::uint64_t> cached_;  // block hashes the pod holds now
    std::uint64_t next_token_ = 1;
};

}  // namespace kvevents::cli

#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <kvevents/events.h>

namespace kvevents::cli {

/// Generates what a busy vLLM pod publishes: stores of 1-4 blocks of 16 tokens that extend
/// cached prefixes (so parents are real), evictions of stored blocks, and a rare cache reset.
/// Deterministic per seed.
class EngineWorkload {
public:
    explicit EngineWorkload(std::uint64_t seed) : rng_(seed) {}

    /// The next batch: `events` events when given (a cache reset may be one of them), otherwise
    /// 1 to 3, or a cache reset alone.
    EventBatch next_batch(double ts, std::optional<std::size_t> events = std::nullopt);
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

#pragma once

#include <cstdint>

#include <kvevents/events.h>

namespace kvevents::bench {

/// The realistic batch the benchmarks decode: 6 BlockStored events of 4 blocks x 16 tokens with
/// chained uint64 hashes above 2^63, and 2 BlockRemoved events, as vLLM's scheduler emits them.
EventBatch realistic_batch(std::uint64_t salt = 0);

}  // namespace kvevents::bench

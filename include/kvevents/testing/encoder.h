#pragma once

#include <string>

#include <kvevents/events.h>

namespace kvevents::testing {

/// The payload layouts publishers have used, oldest first (see docs/compatibility.md).
enum class WireEra {
    kV0_9,          // envelope [ts, events]; BlockStored 6 elements, BlockRemoved 2
    kDataParallel,  // envelope gains data_parallel_rank; events as kV0_9
    kMedium,        // BlockStored 7, BlockRemoved 3 (medium)
    kLoraName,      // BlockStored 8
    kExtraKeys,     // BlockStored 9
    kGroupIdx,      // BlockStored 10, BlockRemoved 4
    kKvCacheSpec,   // BlockStored 12: the last positional layout
    kSglang,        // BlockStored 7 plus an 8th metadata map when cache_salt is set
    kMapEvents,     // events as tagged maps, None-valued optional fields left out
};

struct EncodeOptions {
    WireEra era = WireEra::kMapEvents;
    /// Write the envelope as a map {"ts", "events", "data_parallel_rank"} instead of an array.
    bool map_envelope = false;
};

/// Encodes a batch exactly as a publisher of `era` would (msgspec's integer widths, nil for
/// absent fields that era carries, fields it lacks left out). Values the era cannot carry are
/// dropped, as that publisher would never have sent them.
std::string encode_batch(const EventBatch& batch, const EncodeOptions& options = {});

}  // namespace kvevents::testing

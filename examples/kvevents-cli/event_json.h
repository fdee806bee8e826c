#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <kvevents/events.h>

#include "json_writer.h"

namespace kvevents::cli {

/// How integer block hashes are written: as JSON numbers (exact, up to 2^64-1), or as decimal
/// strings for readers that keep numbers as doubles (jq 1.6, JavaScript) and would round them.
enum class HashStyle { kNumber, kString };

/// Where a batch came from; printed ahead of each event's own keys.
struct BatchOrigin {
    std::optional<std::string> pod;    // printed as "pod" when set (subscribe)
    std::optional<std::uint64_t> seq;  // null when unknown (decode)
};

/// Writes one event as the CLI's JSON object: seq, ts, dp_rank, idx, type, then the type's own
/// fields, then "extra" with every other non-nil field (omitted when empty).
void write_event_json(JsonWriter& out,
                      const BatchOrigin& origin,
                      const EventBatch& batch,
                      std::size_t index,
                      HashStyle hash_style);

/// One block hash: an integer in `hash_style`, a digest as a lowercase hex string.
void write_block_hash(JsonWriter& out, const BlockHash& hash, HashStyle hash_style);

void write_value_json(JsonWriter& out, const Value& value);

}  // namespace kvevents::cli

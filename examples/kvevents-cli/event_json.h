#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <kvevents/events.h>

#include "json_writer.h"

namespace kvevents::cli {

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
                      std::size_t index);

void write_value_json(JsonWriter& out, const Value& value);

}  // namespace kvevents::cli

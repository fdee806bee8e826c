#pragma once

#include <cstddef>
#include <optional>

#include <kvevents/events.h>

namespace kvevents::bench {

/// msgpack-cxx's SAX-style parser (msgpack::parse with a visitor) building the event model
/// directly, with no object tree. Handles the envelope [ts, events, data_parallel_rank] with
/// positional events (any era's length) or tagged map events whose "type" key comes first (as
/// msgspec writes them), and the fields the benchmark batch and the object-tree baseline carry:
/// everything but extra_keys, which is skipped. Returns nullopt when msgpack::parse fails.
std::optional<EventBatch> decode_via_visitor(const char* data, std::size_t size);

/// msgpack::parse with a visitor that does nothing: the least any msgpack-cxx decoder pays.
bool parse_with_null_visitor(const char* data, std::size_t size);

}  // namespace kvevents::bench

#pragma once

#include <cstddef>

#include <kvevents/events.h>

namespace kvevents::bench {

/// The approach existing subscribers take: msgpack::unpack into an object tree, then walk it
/// into the event model. Handles the same envelope and event shapes as the benchmark batch.
EventBatch decode_via_object_tree(const char* data, std::size_t size);

}  // namespace kvevents::bench

#pragma once

// Receiving a whole multipart message without blocking, shared by the client, the fleet and the
// mock, and turning one into a batch without copying its frames.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "stream_state_machine.h"

namespace kvevents::detail {

/// Receives one whole multipart message into `parts` (cleared first) without blocking; false
/// when none is waiting.
bool receive_message(zmq::socket_t& socket, std::vector<zmq::message_t>& parts);

/// Views of a message's frames, into `out` (reused across messages: no allocation per message).
const std::vector<std::string_view>& frame_views(const std::vector<zmq::message_t>& parts,
                                                 std::vector<std::string_view>& out);

/// The batch, taking the frames over: the payload is the last one, the topic is frame
/// `topic_frame` or, without one, a copy of `fallback_topic`. Views into the frames are not valid
/// afterwards. nullopt when out of memory (for the copied topic).
std::optional<RawBatch> take_batch(std::vector<zmq::message_t>& parts,
                                   std::uint64_t sequence,
                                   std::optional<std::size_t> topic_frame,
                                   std::string_view fallback_topic,
                                   bool replayed);

}  // namespace kvevents::detail

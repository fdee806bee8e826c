#pragma once

// Receiving a whole multipart message without blocking, shared by the client and the mock.

#include <vector>

#include <zmq.hpp>

namespace kvevents::detail {

/// Receives one whole multipart message into `parts` (cleared first) without blocking; false
/// when none is waiting.
bool receive_message(zmq::socket_t& socket, std::vector<zmq::message_t>& parts);

}  // namespace kvevents::detail

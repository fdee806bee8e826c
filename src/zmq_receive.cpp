#include "zmq_receive.h"

#include <utility>

namespace kvevents::detail {

bool receive_message(zmq::socket_t& socket, std::vector<zmq::message_t>& parts) {
    parts.clear();
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait))
        return false;
    while (true) {
        const bool more = part.more();
        parts.push_back(std::move(part));
        if (!more)
            return true;
        part = zmq::message_t();
        // The rest of a multipart message is already here: ZMQ delivers messages atomically.
        if (!socket.recv(part, zmq::recv_flags::none))
            return true;
    }
}

}  // namespace kvevents::detail

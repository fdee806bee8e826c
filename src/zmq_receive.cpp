#include "zmq_receive.h"

#include <cerrno>
#include <new>
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

namespace kvevents::detail {

const std::vector<std::string_view>& frame_views(const std::vector<zmq::message_t>& parts,
                                                 std::vector<std::string_view>& out) {
    out.clear();
    for (const auto& p : parts) out.push_back(p.to_string_view());
    return out;
}

std::optional<RawBatch> take_batch(std::vector<zmq::message_t>& parts,
                                   std::uint64_t sequence,
                                   std::optional<std::size_t> topic_frame,
                                   std::string_view fallback_topic,
                                   bool replayed) {
    try {
        zmq::message_t topic =
            topic_frame ? std::move(parts[*topic_frame]) : zmq::message_t(fallback_topic);
        return RawBatch(sequence, std::move(topic), std::move(parts.back()), replayed);
    } catch (const zmq::error_t& e) {
        if (e.num() != ENOMEM)  // zmq::message_t reports a failed allocation this way
            throw;
    } catch (const std::bad_alloc&) {
    }
    return std::nullopt;
}

}  // namespace kvevents::detail

#include "fan_in_demux.h"

#include <utility>

namespace kvevents::detail {

FanInDemux::FanInDemux(PublisherStream& socket_stream,
                       std::string bound_endpoint,
                       StreamFactory make)
    : socket_stream_(socket_stream),
      bound_endpoint_(std::move(bound_endpoint)),
      make_(std::move(make)) {}

void FanInDemux::on_live(RawBatch batch, TimePoint now) {
    const std::size_t bytes = std::exchange(pending_bytes_, 0);
    auto it = by_topic_.find(batch.topic_view());
    if (it == by_topic_.end()) {
        PublisherStream* made = make_(batch.topic_view(), now);
        if (made == nullptr) {
            socket_stream_.count_bytes(bytes);
            socket_stream_.on_receive_error(
                batch.sequence, "batch of topic '" + std::string(batch.topic_view()) +
                                    "' dropped: the fan-in socket follows as many topics as it "
                                    "may (FleetOptions::max_fan_in_streams)");
            return;
        }
        it = by_topic_.emplace(std::string(batch.topic_view()), made).first;
    }
    PublisherStream& stream = *it->second;
    touch(stream);
    stream.count_bytes(bytes);
    // The socket cannot tell which engine a connection belongs to; a stream is connected while it
    // sends, and one that comes back after every engine was gone may have restarted.
    if (stream.connection_state() != ConnectionState::kConnected)
        stream.on_connection(ConnectionState::kConnected, "via " + bound_endpoint_);
    stream.on_live(std::move(batch), now);
}

void FanInDemux::on_backlog(TimePoint now) {
    for (auto& entry : by_topic_) {
        touch(*entry.second);
        entry.second->on_backlog(now);
    }
}

void FanInDemux::on_connection(ConnectionState state, const std::string& peer) {
    socket_stream_.on_connection(state, peer);
    if (state != ConnectionState::kDisconnected)
        return;
    for (auto& entry : by_topic_) {
        touch(*entry.second);
        entry.second->on_connection(state, peer);
    }
}

void FanInDemux::on_not_connected(std::string detail) {
    socket_stream_.on_not_connected(std::move(detail));
}

void FanInDemux::on_receive_error(std::optional<std::uint64_t> sequence, std::string detail) {
    socket_stream_.on_receive_error(sequence, std::move(detail));
}

}  // namespace kvevents::detail

#pragma once

// A bound socket that many engines connect out to carries one stream per topic: this sends each
// batch to its topic's stream, made on first sight, so that one engine's sequence never reads as
// another's gap or restart.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "publisher_stream.h"

namespace kvevents::detail {

class FanInDemux final : public LiveSink {
public:
    /// Makes (and starts) the stream of a new topic; null when no more may be made.
    using StreamFactory = std::function<PublisherStream*(std::string_view topic, TimePoint now)>;

    /// `socket_stream` takes what belongs to no topic: the socket's connection notices and frames
    /// that cannot be parsed.
    FanInDemux(PublisherStream& socket_stream, std::string bound_endpoint, StreamFactory make);

    void on_live(RawBatch batch, TimePoint now) override;
    void on_backlog(TimePoint now) override;
    void on_connection(ConnectionState state, const std::string& peer) override;
    void on_not_connected(std::string detail) override;
    void on_receive_error(std::optional<std::uint64_t> sequence, std::string detail) override;
    void count_bytes(std::size_t bytes) override { pending_bytes_ += bytes; }

    /// Calls `f` on each topic stream reached since the last call (possibly more than once), so
    /// that the loop settles those alone rather than every topic after each drain.
    template <class F>
    void drain_touched(F&& f) {
        for (PublisherStream* stream : touched_) f(*stream);
        touched_.clear();
    }

private:
    void touch(PublisherStream& stream) {
        if (touched_.empty() || touched_.back() != &stream)
            touched_.push_back(&stream);
    }

    PublisherStream& socket_stream_;
    const std::string bound_endpoint_;
    StreamFactory make_;
    std::map<std::string, PublisherStream*, std::less<>> by_topic_;
    std::size_t pending_bytes_ = 0;  // of the batch being routed
    std::vector<PublisherStream*> touched_;
};

}  // namespace kvevents::detail

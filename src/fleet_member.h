#pragma once

// What one Fleet::add() follows: a live subscription and the stream (or, for a fan-in socket, the
// streams by topic) it feeds. Built by the caller's thread, opened, run and closed by its loop.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <kvevents/client_options.h>
#include <kvevents/event_handler.h>

#include "fan_in_demux.h"
#include "live_subscription.h"
#include "publisher_stream.h"
#include "zmtp_subscription.h"

namespace kvevents::detail {

class FleetLoop;

struct FleetMember {
    FleetMember(ClientOptions requested_options,
                ClientOptions effective_options,
                std::optional<int> fan_in_replay_port,
                EventHandler& event_handler,
                std::shared_ptr<spdlog::logger> logger)
        : requested(std::move(requested_options)),
          options(std::move(effective_options)),
          endpoints(resolve_endpoints(options)),
          replay_port(fan_in_replay_port),
          handler(event_handler),
          log(std::move(logger)) {}

    bool fan_in() const { return options.bind; }

    const ClientOptions requested;  // as the caller gave them: what add() compares
    const ClientOptions options;    // with the memory budget applied
    const ResolvedEndpoints endpoints;
    const std::optional<int> replay_port;  // fan-in streams' replay port
    EventHandler& handler;
    const std::shared_ptr<spdlog::logger> log;
    FleetLoop* loop = nullptr;
    std::atomic<bool> stop{false};

    // Created and destroyed on the loop thread; `mu` guards them against readers of statistics.
    mutable std::mutex mu;
    std::string opened_endpoint;
    std::unique_ptr<PublisherStream> stream;  // fan-in: the socket's own notices
    std::vector<std::unique_ptr<PublisherStream>> topic_streams;  // fan-in: one per topic
    std::vector<std::string> topics;                              // of topic_streams
    std::unique_ptr<FanInDemux> demux;
    std::unique_ptr<LiveSubscription> subscription;  // through libzmq, or
    std::unique_ptr<ZmtpSubscription> direct;        // read by kvevents itself

    std::optional<TimePoint> live_deadline() const {
        if (subscription)
            return subscription->next_deadline();
        return direct ? direct->next_deadline() : std::nullopt;
    }
    void live_tick(TimePoint now) {
        if (subscription)
            subscription->on_tick(now);
        if (direct)
            direct->on_tick(now);
    }
    void close_live() {
        if (subscription)
            subscription->close();
        if (direct)
            direct->close();
    }
};

}  // namespace kvevents::detail

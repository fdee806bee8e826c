#pragma once

// The live side of following publishers: one SUB socket (connected to a publisher, or bound for
// engines that connect out), its connection monitor, and the timers around them (dialling again
// after a protocol error, warning when nothing ever connects). What it receives goes to a
// LiveSink: one publisher's stream, or a demultiplexer by topic. Runs on one thread, like the
// streams it feeds.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>
#include <zmq.hpp>

#include <kvevents/client_options.h>

#include "publisher_stream.h"

namespace kvevents::detail {

class LiveSubscription {
public:
    /// `options` give the socket settings, the pod key for logs and the timers.
    LiveSubscription(const ClientOptions& options,
                     std::string live_endpoint,
                     LiveSink& sink,
                     std::shared_ptr<spdlog::logger> log,
                     zmq::context_t& context,
                     const std::atomic<bool>& stop);
    ~LiveSubscription();
    LiveSubscription(const LiveSubscription&) = delete;
    LiveSubscription& operator=(const LiveSubscription&) = delete;

    /// Opens (binds or connects) the sockets; throws zmq::error_t when the endpoint is unusable.
    void open(TimePoint now);
    void close();

    zmq::socket_t* live_socket() const { return sub_.get(); }
    zmq::socket_t* monitor_socket() const { return monitor_.get(); }
    /// The endpoint as opened: with bind and a wildcard port, the address actually bound.
    const std::string& opened_endpoint() const { return opened_endpoint_; }
    int connected_peers() const { return connected_peers_; }

    /// Each reads a bounded number of messages.
    void drain_live(TimePoint now);
    void drain_monitor();
    std::optional<TimePoint> next_deadline() const;
    void on_tick(TimePoint now);

private:
    void redial_if_due(TimePoint now);
    void warn_if_never_connected(TimePoint now);

    const ClientOptions options_;
    const std::string live_endpoint_;
    LiveSink& sink_;
    const std::shared_ptr<spdlog::logger> log_;
    zmq::context_t& context_;
    const std::atomic<bool>& stop_;
    const std::string monitor_endpoint_;

    std::unique_ptr<zmq::socket_t> sub_;
    std::unique_ptr<zmq::socket_t> monitor_;
    std::string opened_endpoint_;
    int connected_peers_ = 0;
    // When to dial the live endpoint again if libzmq has not reconnected by then.
    std::optional<TimePoint> redial_at_;
    // When to warn that no publisher has connected yet; cleared by the first connection.
    std::optional<TimePoint> connect_warning_at_;
    std::chrono::milliseconds redial_backoff_{0};
    std::vector<zmq::message_t> parts_;
    std::vector<std::string_view> frame_views_;
};

/// What the warning about a publisher (or, bound, any engine) never connecting says.
std::string not_connected_detail(const ClientOptions& options, const std::string& endpoint);

}  // namespace kvevents::detail

#include "live_subscription.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "endpoint_syntax.h"
#include "wire_frames.h"
#include "zmq_receive.h"

namespace kvevents::detail {

namespace {

constexpr int kMaxMessagesPerDrain = 512;  // keeps the live and replay sockets both moving

// inproc names are per context, and subscriptions may share one: each gets its own.
std::string unique_monitor_endpoint() {
    static std::atomic<std::uint64_t> next{0};
    return "inproc://kvevents-sub-monitor-" + std::to_string(next++);
}

void apply_socket_options(zmq::socket_t& sub, const ClientOptions& options) {
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, options.receive_hwm);
    sub.set(zmq::sockopt::maxmsgsize, options.max_message_size);
    sub.set(zmq::sockopt::reconnect_ivl, static_cast<int>(options.reconnect_interval.count()));
    sub.set(zmq::sockopt::reconnect_ivl_max,
            static_cast<int>(options.reconnect_interval_max.count()));
    if (options.heartbeat_interval.count() > 0) {
        sub.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options.heartbeat_interval.count()));
        sub.set(zmq::sockopt::heartbeat_timeout,
                static_cast<int>(options.heartbeat_timeout.count()));
    }
    sub.set(zmq::sockopt::tcp_keepalive, options.tcp_keepalive ? 1 : 0);
    if (options.tcp_keepalive) {
        sub.set(zmq::sockopt::tcp_keepalive_idle,
                static_cast<int>(options.tcp_keepalive_idle.count()));
        sub.set(zmq::sockopt::tcp_keepalive_intvl,
                static_cast<int>(options.tcp_keepalive_interval.count()));
        sub.set(zmq::sockopt::tcp_keepalive_cnt, options.tcp_keepalive_count);
    }
    sub.set(zmq::sockopt::subscribe, options.topic_filter);
}

}  // namespace

LiveSubscription::LiveSubscription(const ClientOptions& options,
                                   std::string live_endpoint,
                                   LiveSink& sink,
                                   std::shared_ptr<spdlog::logger> log,
                                   zmq::context_t& context,
                                   const std::atomic<bool>& stop)
    : options_(settings_only(options)),
      live_endpoint_(std::move(live_endpoint)),
      sink_(sink),
      log_(std::move(log)),
      context_(context),
      stop_(stop),
      monitor_endpoint_(unique_monitor_endpoint()) {}

LiveSubscription::~LiveSubscription() {
    close();
}

void LiveSubscription::open(TimePoint now) {
    redial_backoff_ = options_.reconnect_interval;
    try {
        sub_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::sub);
        apply_socket_options(*sub_, options_);
        sub_->set(zmq::sockopt::ipv6, has_ipv6_literal(live_endpoint_));
        if (zmq_socket_monitor(sub_->handle(), monitor_endpoint_.c_str(),
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) !=
            0) {
            throw zmq::error_t();
        }
        monitor_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pair);
        monitor_->set(zmq::sockopt::linger, 0);
        monitor_->connect(monitor_endpoint_);
        if (options_.bind) {
            sub_->bind(live_endpoint_);
        } else {
            sub_->connect(live_endpoint_);
        }
    } catch (...) {
        close();
        throw;
    }
    opened_endpoint_ = options_.bind ? sub_->get(zmq::sockopt::last_endpoint) : live_endpoint_;
    if (options_.connect_warning_after.count() > 0)
        connect_warning_at_ = now + options_.connect_warning_after;
}

void LiveSubscription::close() {
    monitor_.reset();
    sub_.reset();
}

void LiveSubscription::drain_monitor() {
    for (int i = 0; i < kMaxMessagesPerDrain && receive_message(*monitor_, parts_); ++i) {
        if (parts_.size() != 2 || parts_[0].size() < 6)
            continue;
        std::uint16_t event = 0;
        std::memcpy(&event, parts_[0].data(), sizeof event);
        const std::string peer(parts_[1].to_string_view());
        if (event == ZMQ_EVENT_CONNECTED || event == ZMQ_EVENT_ACCEPTED) {
            // Connecting, there is one endpoint and so one connection at most; counting up could
            // go wrong when a redial replaces a session whose event is still queued.
            connected_peers_ = options_.bind ? connected_peers_ + 1 : 1;
            redial_at_.reset();
            connect_warning_at_.reset();
            sink_.on_connection(ConnectionState::kConnected, peer);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            connected_peers_ = std::max(0, connected_peers_ - 1);
            if (connected_peers_ == 0)
                sink_.on_connection(ConnectionState::kDisconnected, peer);
            if (!options_.bind && !redial_at_)
                redial_at_ = StreamClock::now() + redial_backoff_;
        }
    }
}

void LiveSubscription::drain_live(TimePoint now) {
    int received = 0;
    for (; received < kMaxMessagesPerDrain && receive_message(*sub_, parts_); ++received) {
        const ParsedFrames f = parse_live_frames(frame_views(parts_, frame_views_));
        if (f.kind != ParsedFrames::Kind::kData) {
            sink_.on_receive_error(std::nullopt, f.error);
            continue;
        }
        sink_.count_bytes(f.payload.size());
        std::optional<RawBatch> batch = take_batch(parts_, f.sequence, 0, {}, false);
        if (!batch) {
            // A gap now, recovered or announced like any other.
            sink_.on_receive_error(f.sequence, "batch dropped: out of memory receiving it");
            continue;
        }
        sink_.on_live(std::move(*batch), now);
        redial_backoff_ = options_.reconnect_interval;  // this connection works
        if (stop_)
            return;
    }
    // A queue past half its high-water mark (or a full drain) may have dropped batches, maybe the
    // last ones: the stream probes for its tail once it goes quiet. Quiet is counted from the end
    // of the drain, however long the handler took.
    if (received >= std::clamp(options_.receive_hwm / 2, 1, kMaxMessagesPerDrain))
        sink_.on_backlog(StreamClock::now());
}

std::optional<TimePoint> LiveSubscription::next_deadline() const {
    return earliest(redial_at_, connect_warning_at_);
}

void LiveSubscription::on_tick(TimePoint now) {
    redial_if_due(now);
    warn_if_never_connected(now);
}

// libzmq reconnects after a network error but not after a protocol error, such as a message
// above max_message_size: that connection would stay down for good. So when no connection is
// back a backoff after a disconnect, the endpoint is dialled again. The backoff doubles up to
// reconnect_interval_max, and goes back to reconnect_interval once a batch arrives, so a peer that
// accepts and drops connections is not dialled in a tight loop.
void LiveSubscription::redial_if_due(TimePoint now) {
    if (!redial_at_ || now < *redial_at_)
        return;
    redial_at_.reset();
    redial_backoff_ = std::min(redial_backoff_ * 2, options_.reconnect_interval_max);
    try {
        sub_->disconnect(live_endpoint_);
    } catch (const zmq::error_t& e) {
        if (e.num() != ENOENT)
            return;  // the old session may still be there: a second one would duplicate
    }
    sub_->connect(live_endpoint_);
    log_->debug("[{}] dialling {} again", options_.pod_key, live_endpoint_);
}

void LiveSubscription::warn_if_never_connected(TimePoint now) {
    if (!connect_warning_at_ || now < *connect_warning_at_)
        return;
    connect_warning_at_.reset();
    sink_.on_not_connected(
        not_connected_detail(options_, options_.bind ? opened_endpoint_ : live_endpoint_));
}

std::string not_connected_detail(const ClientOptions& options, const std::string& endpoint) {
    const auto waited = std::to_string(options.connect_warning_after.count());
    return options.bind ? "no engine has connected to " + endpoint + " in " + waited +
                              " ms; check that the engines' KV-events endpoint points here"
                        : "no publisher has answered at " + endpoint + " in " + waited +
                              " ms; check the address and port, and that the engine runs with KV "
                              "events enabled (vLLM: --kv-events-config)";
}

}  // namespace kvevents::detail

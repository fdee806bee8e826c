#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.hpp>

#include <kvevents/decode.h>
#include <kvevents/zmq_client.h>

#include "delivery_lag.h"
#include "log_rate_limiter.h"
#include "stream_state_machine.h"
#include "wire_frames.h"
#include "zmq_context_access.h"
#include "zmq_receive.h"

namespace kvevents {

const char* to_string(ConnectionState state) {
    switch (state) {
        case ConnectionState::kConnecting:
            return "connecting";
        case ConnectionState::kConnected:
            return "connected";
        case ConnectionState::kDisconnected:
            return "disconnected";
        case ConnectionState::kStopped:
            return "stopped";
        case ConnectionState::kFailed:
            return "failed";
    }
    return "unknown";
}

const char* to_string(StreamNotice::Kind kind) {
    switch (kind) {
        case StreamNotice::Kind::kPublisherRestarted:
            return "publisher_restarted";
        case StreamNotice::Kind::kUnrecoverableGap:
            return "unrecoverable_gap";
        case StreamNotice::Kind::kContinuityLost:
            return "continuity_lost";
        case StreamNotice::Kind::kDecodeError:
            return "decode_error";
        case StreamNotice::Kind::kConnectionChanged:
            return "connection_changed";
        case StreamNotice::Kind::kHandlerError:
            return "handler_error";
        case StreamNotice::Kind::kNotConnected:
            return "not_connected";
    }
    return "unknown";
}

namespace {

using Clock = detail::StreamClock;
using std::chrono::milliseconds;

constexpr int kMaxMessagesPerDrain = 512;  // keeps the live and replay sockets both moving

// inproc names are per context, and clients may share one: each gets its own.
std::string unique_monitor_endpoint() {
    static std::atomic<std::uint64_t> next{0};
    return "inproc://kvevents-sub-monitor-" + std::to_string(next++);
}

// Stop() wakes the loop through this, so the loop can wait with no timeout when no timer is due
// (an idle client costs no wake-ups) and a shared context need not be shut down to stop one.
class WakeSignal {
public:
    WakeSignal() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (fd_ < 0)
            throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    ~WakeSignal() { ::close(fd_); }
    WakeSignal(const WakeSignal&) = delete;
    WakeSignal& operator=(const WakeSignal&) = delete;

    int fd() const { return fd_; }
    void raise() const {
        const std::uint64_t one = 1;
        // The counter cannot be full here; a failed write would only leave the loop to its next
        // wake-up.
        [[maybe_unused]] const auto written = ::write(fd_, &one, sizeof one);
    }

private:
    const int fd_;
};

// A client's own context holds its few sockets; only a shared one needs a large socket table.
std::shared_ptr<ZmqContext> private_context() {
    ZmqContextOptions options;
    options.max_sockets = 64;
    return std::make_shared<ZmqContext>(options);
}

std::shared_ptr<spdlog::logger> logger_or_silent(std::shared_ptr<spdlog::logger> logger) {
    if (logger)
        return logger;
    // A private logger object, never registered: spdlog's global registry stays untouched.
    return std::make_shared<spdlog::logger>("kvevents",
                                            std::make_shared<spdlog::sinks::null_sink_mt>());
}

// Views of a message's frames, into a vector reused across messages (no allocation per message).
const std::vector<std::string_view>& views(const std::vector<zmq::message_t>& parts,
                                           std::vector<std::string_view>& out) {
    out.clear();
    for (const auto& p : parts) out.push_back(p.to_string_view());
    return out;
}

}  // namespace

namespace {

detail::StreamConfig stream_config(const ClientOptions& options,
                                   const ResolvedEndpoints& endpoints) {
    detail::StreamConfig config;
    config.replay_available = !endpoints.replay.empty();
    config.start_sequence = options.start_sequence;
    config.max_buffered = options.max_buffered_batches;
    config.replay_idle_timeout = options.replay_idle_timeout;
    config.replay_total_timeout = options.replay_total_timeout;
    config.backoff_initial = options.replay_backoff_initial;
    config.backoff_max = options.replay_backoff_max;
    config.tail_probe_idle = options.tail_probe_idle;
    return config;
}

}  // namespace

struct ZmqClient::Impl final : detail::StreamActions {
    Impl(ClientOptions opts, EventHandler& h)
        : options((validate(opts), std::move(opts))),
          endpoints(resolve_endpoints(options)),
          handler(h),
          log(logger_or_silent(options.logger)),
          context_owner(options.context ? options.context : private_context()),
          context(detail::ZmqContextAccess::context(*context_owner)),
          stream(*this, stream_config(options, endpoints)),
          error_log(options.log_errors_per_second) {}

    const ClientOptions options;
    const ResolvedEndpoints endpoints;
    EventHandler& handler;
    const std::shared_ptr<spdlog::logger> log;
    const std::shared_ptr<ZmqContext> context_owner;
    zmq::context_t& context;
    const std::string monitor_endpoint = unique_monitor_endpoint();
    const WakeSignal wake;

    std::mutex lifecycle_mu;  // Start/Stop from callers
    std::thread thread;
    std::atomic<bool> started{false};
    std::atomic<bool> stop_requested{false};
    std::atomic<std::thread::id> loop_thread{};

    mutable std::mutex stats_mu;
    ClientStats stats;            // guarded by stats_mu
    std::string opened_endpoint;  // guarded by stats_mu

    // Loop-thread state.
    std::unique_ptr<zmq::socket_t> sub;
    std::unique_ptr<zmq::socket_t> monitor;
    std::unique_ptr<zmq::socket_t> dealer;  // the current replay request's socket
    std::uint64_t replay_id = 0;            // the request `dealer` belongs to
    detail::StreamStateMachine stream;
    detail::LogRateLimiter error_log;
    ConnectionState state = ConnectionState::kConnecting;
    int connected_peers = 0;
    // When to dial the live endpoint again if libzmq has not reconnected by then (see redial()).
    std::optional<Clock::time_point> redial_at;
    // When to warn that no publisher has connected yet; cleared by the first connection.
    std::optional<Clock::time_point> connect_warning_at;
    milliseconds redial_backoff{0};
    bool ever_connected = false;
    // Counted on the loop thread and added to `stats` with the next batch's update, so a batch
    // takes the statistics lock once.
    std::uint64_t unflushed_bytes = 0;
    std::uint64_t unflushed_wakeups = 0;
    std::vector<zmq::message_t> parts;
    std::vector<std::string_view> frame_views;
    std::string last_live_topic;

    template <class F>
    void update_stats(F&& f) {
        std::lock_guard<std::mutex> lock(stats_mu);
        f(stats);
    }

    // On the loop thread: also adds the counts kept there since the last update.
    template <class F>
    void update_loop_stats(F&& f) {
        std::lock_guard<std::mutex> lock(stats_mu);
        stats.bytes += std::exchange(unflushed_bytes, 0);
        stats.wakeups += std::exchange(unflushed_wakeups, 0);
        f(stats);
    }

    template <class... Args>
    void log_error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
        const auto held = error_log.allow(Clock::now());
        if (!held)
            return;
        if (*held > 0) {
            log->error("[{}] {} similar errors not logged", options.pod_key, *held);
        }
        log->error(fmt, std::forward<Args>(args)...);
    }

    void notify(StreamNotice notice) {
        if (stop_requested)
            return;  // no handler call starts once Stop() was asked
        handler_notice(std::move(notice));
    }

    // A throwing notice handler is counted like a throwing batch handler; it gets no
    // kHandlerError notice of its own, which could throw again.
    void handler_notice(StreamNotice notice) {
        try {
            handler.on_notice(notice);
        } catch (const std::exception& e) {
            notice_handler_failed(notice.kind, e.what());
        } catch (...) {
            notice_handler_failed(notice.kind, "non-exception thrown");
        }
    }

    void notice_handler_failed(StreamNotice::Kind kind, const std::string& what) {
        update_stats([](ClientStats& s) { ++s.handler_errors; });
        log_error("[{}] handler threw on a {} notice: {}", options.pod_key, to_string(kind), what);
    }

    StreamNotice make_notice(StreamNotice::Kind kind) const {
        return StreamNotice{kind, options.pod_key, std::nullopt, std::nullopt, state, {}};
    }

    void report_decode_error(std::optional<std::uint64_t> seq, std::string detail) {
        update_stats([](ClientStats& s) { ++s.decode_errors; });
        log_error("[{}] decode error{}: {}", options.pod_key,
                  seq ? " in batch " + std::to_string(*seq) : std::string(), detail);
        StreamNotice n = make_notice(StreamNotice::Kind::kDecodeError);
        n.first_sequence = seq;
        n.detail = std::move(detail);
        notify(std::move(n));
    }

    // --- StreamActions -------------------------------------------------------------------

    void deliver(detail::RawBatch& raw) override {
        if (stop_requested)
            return;  // no handler call starts once Stop() was asked
        try {
            deliver_decoded(raw);
        } catch (const std::exception& e) {
            // Whatever one batch does, the stream goes on with the next.
            try {
                report_decode_error(raw.sequence,
                                    std::string("handling the batch failed: ") + e.what());
            } catch (const std::exception&) {
                // Out of memory even for the notice: the batch is still counted.
                update_stats([](ClientStats& s) { ++s.decode_errors; });
            }
        }
    }

    void deliver_decoded(detail::RawBatch& raw) {
        DecodeResult decoded = decode_batch(raw.payload.data(), raw.payload.size());
        if (decoded.fatal) {
            report_decode_error(raw.sequence, decoded.fatal->message());
            return;
        }
        if (decoded.malformed_events != 0) {
            update_stats([&](ClientStats& s) { s.decode_errors += decoded.malformed_events - 1; });
            report_decode_error(raw.sequence, std::to_string(decoded.malformed_events) +
                                                  " malformed event(s) skipped; first: " +
                                                  decoded.event_errors.front().message());
        }
        const auto lag = detail::lag_since(decoded.batch.ts);
        update_loop_stats([&](ClientStats& s) {
            ++s.batches;
            s.events += decoded.batch.events.size();
            s.unknown_events += decoded.unknown_events;
            if (raw.replayed)
                ++s.batches_recovered;
            s.last_sequence = raw.sequence;
            s.last_lag = lag;
            s.max_lag = std::max(s.max_lag, s.last_lag);
        });
        const ReceivedBatch batch{options.pod_key,  options.model_name, raw.sequence,
                                  raw.topic_view(), decoded.batch,      raw.replayed};
        try {
            handler.on_batch(batch);
        } catch (const std::exception& e) {
            handler_failed(raw.sequence, e.what());
        } catch (...) {
            handler_failed(raw.sequence, "non-exception thrown");
        }
    }

    void handler_failed(std::uint64_t seq, const std::string& what) {
        update_stats([](ClientStats& s) { ++s.handler_errors; });
        log_error("[{}] handler threw on batch {}: {}", options.pod_key, seq, what);
        StreamNotice n = make_notice(StreamNotice::Kind::kHandlerError);
        n.first_sequence = seq;
        n.detail = what;
        notify(std::move(n));
    }

    void announce_restart(std::uint64_t revealed_by) override {
        update_stats([](ClientStats& s) { ++s.restarts; });
        log->warn("[{}] publisher restarted (sequence {}); its earlier blocks are gone",
                  options.pod_key, revealed_by);
        StreamNotice n = make_notice(StreamNotice::Kind::kPublisherRestarted);
        n.first_sequence = revealed_by;
        notify(std::move(n));
    }

    void announce_continuity_lost(std::uint64_t next_sequence) override {
        update_stats([](ClientStats& s) { ++s.continuity_lost; });
        log->warn(
            "[{}] cannot prove the publisher is the one followed before (it may have "
            "restarted); its earlier blocks may be gone; going on from sequence {}",
            options.pod_key, next_sequence);
        StreamNotice n = make_notice(StreamNotice::Kind::kContinuityLost);
        n.first_sequence = next_sequence;
        notify(std::move(n));
    }

    void announce_loss(std::uint64_t first, std::uint64_t last) override {
        update_stats([&](ClientStats& s) { s.batches_unrecoverable += last - first + 1; });
        log->warn("[{}] batches {}..{} are lost for good", options.pod_key, first, last);
        StreamNotice n = make_notice(StreamNotice::Kind::kUnrecoverableGap);
        n.first_sequence = first;
        n.last_sequence = last;
        notify(std::move(n));
    }

    bool request_replay(std::uint64_t id, std::uint64_t from, detail::ReplayPurpose why) override {
        // A fresh socket per request: replies to an ended request can never be mistaken for
        // replies to this one.
        update_stats([](ClientStats& s) { ++s.replays_requested; });
        try {
            auto socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
            socket->set(zmq::sockopt::linger, 0);
            socket->set(zmq::sockopt::rcvhwm, 0);  // a replay may be 10000 batches; never drop
            socket->set(zmq::sockopt::maxmsgsize, options.max_message_size);
            socket->connect(endpoints.replay);
            socket->send(zmq::message_t(), zmq::send_flags::sndmore);
            socket->send(zmq::buffer(detail::be_u64(from)), zmq::send_flags::none);
            dealer = std::move(socket);
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM)
                throw;  // the caller shut the shared context down: the client cannot go on
            log_error("[{}] cannot send a {} replay request: {}", options.pod_key,
                      detail::to_string(why), e.what());
            return false;
        }
        replay_id = id;
        log->info("[{}] {} replay requested from sequence {}", options.pod_key,
                  detail::to_string(why), from);
        return true;
    }

    void replay_ended(std::uint64_t id, detail::ReplayOutcome outcome) override {
        if (id == replay_id)
            dealer.reset();
        switch (outcome) {
            case detail::ReplayOutcome::kCompleted:
                update_stats([](ClientStats& s) { ++s.replays_completed; });
                break;
            case detail::ReplayOutcome::kCancelled:
                break;
            case detail::ReplayOutcome::kTimedOut:
            case detail::ReplayOutcome::kUnsendable:
            case detail::ReplayOutcome::kAbandoned:
                update_stats([](ClientStats& s) { ++s.replays_failed; });
                log->warn("[{}] replay {}", options.pod_key,
                          outcome == detail::ReplayOutcome::kTimedOut ? "timed out"
                          : outcome == detail::ReplayOutcome::kUnsendable
                              ? "could not be sent"
                              : "abandoned: held batches reached replay_total_timeout");
                break;
        }
    }

    void duplicate_dropped(std::uint64_t) override {
        update_stats([](ClientStats& s) { ++s.duplicates_dropped; });
    }

    void buffer_overflow(std::uint64_t) override {
        update_stats([](ClientStats& s) { ++s.live_dropped_while_buffering; });
    }

    void gap_detected(std::uint64_t first_missing, std::uint64_t seen) override {
        update_stats([](ClientStats& s) { ++s.gaps_detected; });
        log->warn("[{}] sequence gap: expected {}, got {}", options.pod_key, first_missing, seen);
    }

    // --- the loop ------------------------------------------------------------------------

    void open_sockets() {
        redial_backoff = options.reconnect_interval;
        sub = std::make_unique<zmq::socket_t>(context, zmq::socket_type::sub);
        sub->set(zmq::sockopt::linger, 0);
        sub->set(zmq::sockopt::rcvhwm, options.receive_hwm);
        sub->set(zmq::sockopt::maxmsgsize, options.max_message_size);
        sub->set(zmq::sockopt::reconnect_ivl, static_cast<int>(options.reconnect_interval.count()));
        sub->set(zmq::sockopt::reconnect_ivl_max,
                 static_cast<int>(options.reconnect_interval_max.count()));
        if (options.heartbeat_interval.count() > 0) {
            sub->set(zmq::sockopt::heartbeat_ivl,
                     static_cast<int>(options.heartbeat_interval.count()));
            sub->set(zmq::sockopt::heartbeat_timeout,
                     static_cast<int>(options.heartbeat_timeout.count()));
        }
        sub->set(zmq::sockopt::tcp_keepalive, options.tcp_keepalive ? 1 : 0);
        if (options.tcp_keepalive) {
            sub->set(zmq::sockopt::tcp_keepalive_idle,
                     static_cast<int>(options.tcp_keepalive_idle.count()));
            sub->set(zmq::sockopt::tcp_keepalive_intvl,
                     static_cast<int>(options.tcp_keepalive_interval.count()));
            sub->set(zmq::sockopt::tcp_keepalive_cnt, options.tcp_keepalive_count);
        }
        sub->set(zmq::sockopt::subscribe, options.topic_filter);
        if (zmq_socket_monitor(sub->handle(), monitor_endpoint.c_str(),
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) !=
            0) {
            throw zmq::error_t();
        }
        monitor = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
        monitor->set(zmq::sockopt::linger, 0);
        monitor->connect(monitor_endpoint);
        if (options.bind) {
            sub->bind(endpoints.live);
        } else {
            sub->connect(endpoints.live);
        }
        if (!endpoints.replay.empty()) {
            // Each replay gets a fresh DEALER later; trying the address now turns a bad one
            // into an error from Start() instead of a dead loop at the first gap.
            zmq::socket_t probe(context, zmq::socket_type::dealer);
            probe.set(zmq::sockopt::linger, 0);
            probe.connect(endpoints.replay);
        }
        {
            std::lock_guard<std::mutex> lock(stats_mu);
            opened_endpoint = options.bind ? sub->get(zmq::sockopt::last_endpoint) : endpoints.live;
        }
        log->info("[{}] {} {}{}", options.pod_key, options.bind ? "bound" : "connecting to",
                  endpoints.live,
                  endpoints.replay.empty() ? " (replay off)" : ", replay " + endpoints.replay);
    }

    void set_state(ConnectionState next, const std::string& peer) {
        if (next == state)
            return;
        const bool reconnect = next == ConnectionState::kConnected && ever_connected;
        state = next;
        ever_connected = ever_connected || next == ConnectionState::kConnected;
        update_stats([&](ClientStats& s) {
            s.state = next;
            if (reconnect)
                ++s.reconnects;
        });
        log->info("[{}] {} {}", options.pod_key, to_string(next), peer);
        StreamNotice n = make_notice(StreamNotice::Kind::kConnectionChanged);
        n.detail = peer;
        notify(std::move(n));
        if (reconnect)
            stream.on_reconnected(Clock::now());
    }

    void drain_monitor() {
        for (int i = 0; i < kMaxMessagesPerDrain && detail::receive_message(*monitor, parts); ++i) {
            if (parts.size() != 2 || parts[0].size() < 6)
                continue;
            std::uint16_t event = 0;
            std::memcpy(&event, parts[0].data(), sizeof event);
            const std::string peer(parts[1].to_string_view());
            if (event == ZMQ_EVENT_CONNECTED || event == ZMQ_EVENT_ACCEPTED) {
                // Connecting, there is one endpoint and so one connection at most; counting up
                // could go wrong when a redial replaces a session whose event is still queued.
                connected_peers = options.bind ? connected_peers + 1 : 1;
                redial_at.reset();
                connect_warning_at.reset();
                set_state(ConnectionState::kConnected, peer);
            } else if (event == ZMQ_EVENT_DISCONNECTED) {
                connected_peers = std::max(0, connected_peers - 1);
                if (connected_peers == 0)
                    set_state(ConnectionState::kDisconnected, peer);
                if (!options.bind && !redial_at)
                    redial_at = Clock::now() + redial_backoff;
            }
        }
    }

    // libzmq reconnects after a network error but not after a protocol error, such as a message
    // above max_message_size: that connection would stay down for good. So when no connection is
    // back a backoff after a disconnect, the endpoint is dialled again. The backoff doubles up to
    // reconnect_interval_max, and goes back to reconnect_interval once a batch arrives, so a peer
    // that accepts and drops connections is not dialled in a tight loop.
    void redial_if_due(Clock::time_point now) {
        if (!redial_at || now < *redial_at)
            return;
        redial_at.reset();
        redial_backoff = std::min(redial_backoff * 2, options.reconnect_interval_max);
        try {
            sub->disconnect(endpoints.live);
        } catch (const zmq::error_t& e) {
            if (e.num() != ENOENT)
                return;  // the old session may still be there: a second one would duplicate
        }
        sub->connect(endpoints.live);
        log->debug("[{}] dialling {} again", options.pod_key, endpoints.live);
    }

    // The batch, taking the received frames over (the payload is the last one; `topic_frame`
    // names the topic's, if the message has one). `f`'s views into the frames are not valid
    // afterwards. Out of memory (for a topic-less reply's topic) drops just this batch.
    std::optional<detail::RawBatch> take_batch(const detail::ParsedFrames& f,
                                               std::optional<std::size_t> topic_frame,
                                               bool replayed) {
        try {
            zmq::message_t topic = topic_frame ? std::move(parts[*topic_frame])
                                               : zmq::message_t(std::string_view(last_live_topic));
            return detail::RawBatch(f.sequence, std::move(topic), std::move(parts.back()),
                                    replayed);
        } catch (const zmq::error_t& e) {
            if (e.num() != ENOMEM)  // zmq::message_t reports a failed allocation this way
                throw;
        } catch (const std::bad_alloc&) {
        }
        report_decode_error(f.sequence, "batch dropped: out of memory receiving it");
        return std::nullopt;
    }

    void warn_if_never_connected(Clock::time_point now) {
        if (!connect_warning_at || now < *connect_warning_at)
            return;
        connect_warning_at.reset();
        const auto waited = options.connect_warning_after.count();
        std::string detail =
            options.bind ? "no engine has connected to " + opened_live_endpoint() + " in " +
                               std::to_string(waited) +
                               " ms; check that the engines' KV-events endpoint points here"
                         : "no publisher has answered at " + endpoints.live + " in " +
                               std::to_string(waited) +
                               " ms; check the address and port, and that the engine runs with KV "
                               "events enabled (vLLM: --kv-events-config)";
        log->warn("[{}] {}", options.pod_key, detail);
        StreamNotice n = make_notice(StreamNotice::Kind::kNotConnected);
        n.detail = std::move(detail);
        notify(std::move(n));
    }

    std::string opened_live_endpoint() const {
        std::lock_guard<std::mutex> lock(stats_mu);
        return opened_endpoint;
    }

    void drain_live(Clock::time_point now) {
        int received = 0;
        for (; received < kMaxMessagesPerDrain && detail::receive_message(*sub, parts);
             ++received) {
            const detail::ParsedFrames f = detail::parse_live_frames(views(parts, frame_views));
            if (f.kind != detail::ParsedFrames::Kind::kData) {
                report_decode_error(std::nullopt, f.error);
                continue;
            }
            unflushed_bytes += f.payload.size();
            std::optional<detail::RawBatch> batch = take_batch(f, 0, false);
            if (!batch)
                continue;  // a gap now, recovered or announced like any other
            if (batch->topic_view() != last_live_topic)
                last_live_topic = batch->topic_view();
            stream.on_live(std::move(*batch), now);
            redial_backoff = options.reconnect_interval;  // this connection works
            if (stop_requested)
                return;
        }
        // A queue past half its high-water mark (or a full drain) may have dropped batches,
        // maybe the last ones: the stream probes for its tail once it goes quiet.
        // Quiet is counted from the end of the drain, however long the handler took.
        if (received >= std::clamp(options.receive_hwm / 2, 1, kMaxMessagesPerDrain))
            stream.on_backlog(Clock::now());
    }

    void drain_replay() {
        const std::uint64_t id = replay_id;
        for (int i = 0; i < kMaxMessagesPerDrain && detail::receive_message(*dealer, parts); ++i) {
            // Taken per reply: time the handler spends on a batch is not replay silence.
            const auto now = Clock::now();
            const detail::ParsedFrames f = detail::parse_replay_frames(views(parts, frame_views));
            switch (f.kind) {
                case detail::ParsedFrames::Kind::kMalformed:
                    report_decode_error(std::nullopt, "replay: " + f.error);
                    break;
                case detail::ParsedFrames::Kind::kEnd:
                    stream.on_replay_end(id, now);
                    return;
                case detail::ParsedFrames::Kind::kData: {
                    unflushed_bytes += f.payload.size();
                    // Replies before vLLM v0.26 carry no topic; the publisher has only one.
                    const bool has_topic = parts.size() == 4;
                    std::optional<detail::RawBatch> batch = take_batch(
                        f, has_topic ? std::optional<std::size_t>(1) : std::nullopt, true);
                    if (batch)
                        stream.on_replay_batch(id, std::move(*batch), now);
                    break;
                }
            }
            // The stream may have ended this request (and started another on a new socket).
            if (id != replay_id || !dealer || stop_requested)
                return;
        }
    }

    // -1 (wait until a socket or Stop() wakes the loop) unless a timer is due.
    milliseconds next_timeout(Clock::time_point now) const {
        std::optional<milliseconds> timeout;
        for (const auto deadline : {stream.next_deadline(), redial_at, connect_warning_at}) {
            if (!deadline)
                continue;
            const auto left =
                std::max(std::chrono::ceil<milliseconds>(*deadline - now), milliseconds(0));
            timeout = timeout ? std::min(*timeout, left) : left;
        }
        return timeout.value_or(milliseconds(-1));
    }

    void loop() {
        std::vector<zmq::pollitem_t> items;
        while (!stop_requested) {
            items.clear();
            items.push_back({sub->handle(), 0, ZMQ_POLLIN, 0});
            items.push_back({monitor->handle(), 0, ZMQ_POLLIN, 0});
            items.push_back({nullptr, wake.fd(), ZMQ_POLLIN, 0});
            if (dealer)
                items.push_back({dealer->handle(), 0, ZMQ_POLLIN, 0});
            try {
                zmq::poll(items.data(), items.size(), next_timeout(Clock::now()));
            } catch (const zmq::error_t& e) {
                if (e.num() != EINTR)
                    throw;
                continue;  // a signal (a profiler, a debugger, SIGCHLD) interrupted the wait
            }
            // What the poll saw as silent was silent up to now: timers judge by this instant,
            // not by the end of the handler calls below.
            const auto woke = Clock::now();
            ++unflushed_wakeups;
            if ((items[2].revents & ZMQ_POLLIN) != 0)
                continue;  // Stop(): the loop condition ends it
            try {
                if ((items[1].revents & ZMQ_POLLIN) != 0)
                    drain_monitor();
                if (items.size() > 3 && dealer && (items[3].revents & ZMQ_POLLIN) != 0)
                    drain_replay();
                if ((items[0].revents & ZMQ_POLLIN) != 0)
                    drain_live(woke);
                redial_if_due(woke);
                warn_if_never_connected(woke);
                if (!stop_requested)
                    stream.on_tick(woke);
                if (unflushed_bytes != 0 || unflushed_wakeups != 0)
                    update_loop_stats([](ClientStats&) {});  // what no batch took along
            } catch (const std::bad_alloc&) {
                // Out of memory for something small (a log line, a notice, a held batch's
                // slot): the message being handled is lost, which shows as a gap, and the loop
                // goes on rather than stop the client for good.
                update_stats([](ClientStats& s) { ++s.decode_errors; });
            }
        }
    }

    // The loop cannot go on: say so (running() turns false) rather than go quiet.
    void died(const std::string& why) {
        log->error("[{}] client stopped by {}", options.pod_key, why);
        update_stats([](ClientStats& s) { s.state = ConnectionState::kFailed; });
        const bool was_stopping = stop_requested.exchange(true);
        if (was_stopping)
            return;
        StreamNotice n = make_notice(StreamNotice::Kind::kConnectionChanged);
        n.state = ConnectionState::kFailed;
        n.detail = "client stopped by " + why;
        handler_notice(std::move(n));
    }

    // Sockets are opened on the loop thread (they never leave it); `opened` tells Start() whether
    // the endpoints were usable, so a bad address fails the caller rather than the log.
    void run(std::promise<void> opened) noexcept {
        loop_thread = std::this_thread::get_id();
        // Named for top -H, perf and gdb: "kvev:" plus the start of the pod key (15 chars max).
        pthread_setname_np(pthread_self(), ("kvev:" + options.pod_key.substr(0, 10)).c_str());
        try {
            try {
                open_sockets();
            } catch (...) {
                dealer.reset();
                monitor.reset();
                sub.reset();
                opened.set_exception(std::current_exception());
                return;
            }
            opened.set_value();
            if (options.connect_warning_after.count() > 0)
                connect_warning_at = Clock::now() + options.connect_warning_after;
            stream.start(Clock::now());
            loop();
            update_loop_stats([](ClientStats&) {});  // the last wake-ups and bytes
        } catch (const zmq::error_t& e) {
            // Stop() never shuts a context down, so ETERM means its owner did.
            died(e.num() == ETERM ? std::string("the ZeroMQ context being shut down")
                                  : std::string("transport error: ") + e.what());
        } catch (const std::exception& e) {
            died(std::string("unexpected error: ") + e.what());
        } catch (...) {
            died("unexpected non-exception error");
        }
        dealer.reset();
        monitor.reset();
        sub.reset();
        update_stats([](ClientStats& s) {
            if (s.state != ConnectionState::kFailed)
                s.state = ConnectionState::kStopped;
        });
        log->info("[{}] stopped", options.pod_key);
    }
};

ZmqClient::ZmqClient(ClientOptions options, EventHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

ZmqClient::~ZmqClient() {
    Stop();
}

void ZmqClient::Start() {
    std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
    if (impl_->started) {
        throw std::logic_error("ZmqClient::Start called twice");
    }
    impl_->started = true;
    std::promise<void> opened;
    std::future<void> result = opened.get_future();
    impl_->thread = std::thread([impl = impl_.get(), opened = std::move(opened)]() mutable {
        impl->run(std::move(opened));
    });
    try {
        result.get();
    } catch (const std::exception& e) {
        impl_->thread.join();
        impl_->stop_requested = true;
        throw std::runtime_error(
            "ZmqClient '" + impl_->options.pod_key + "': cannot open " + impl_->endpoints.live +
            (impl_->endpoints.replay.empty() ? std::string()
                                             : " / replay " + impl_->endpoints.replay) +
            ": " + e.what());
    }
}

void ZmqClient::Stop() {
    impl_->stop_requested = true;
    if (impl_->loop_thread.load() == std::this_thread::get_id()) {
        return;  // from inside the handler: the loop exits when the handler returns
    }
    std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
    if (impl_->thread.joinable()) {
        impl_->wake.raise();
        impl_->thread.join();
    }
    impl_->update_stats([](ClientStats& s) {
        if (s.state != ConnectionState::kFailed)
            s.state = ConnectionState::kStopped;
    });
}

bool ZmqClient::running() const {
    return impl_->started && !impl_->stop_requested;
}

ClientStats ZmqClient::stats() const {
    std::lock_guard<std::mutex> lock(impl_->stats_mu);
    return impl_->stats;
}

std::string ZmqClient::live_endpoint() const {
    std::lock_guard<std::mutex> lock(impl_->stats_mu);
    return impl_->opened_endpoint;
}

const ClientOptions& ZmqClient::options() const {
    return impl_->options;
}

}  // namespace kvevents

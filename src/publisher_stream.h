#pragma once

// One publisher's stream as the handler sees it: the state machine, the replay socket, the
// statistics and the notices. It owns no thread and no live socket: whatever runs it (a
// ZmqClient's own thread, or a fleet loop shared by many streams) feeds it live batches from a
// LiveSubscription, drains its replay socket when that is readable, and ticks it at
// next_deadline(). Every member except stats() and stop_delivery() runs on that one thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>
#include <zmq.hpp>

#include <kvevents/client_options.h>
#include <kvevents/event_handler.h>
#include <kvevents/zmq_client.h>

#include "log_rate_limiter.h"
#include "stream_state_machine.h"

namespace kvevents::detail {

class PublisherStream;

/// The options without the context and logger, which the owner passes on (and keeps alive):
/// what the parts of a client keep, so they hold no reference of their own.
ClientOptions settings_only(ClientOptions options);

/// What a stream asks of whatever runs it. The defaults suit a stream with a thread of its own.
class StreamHost {
public:
    virtual ~StreamHost() = default;
    /// Whether replay request `id` may be sent now. False: the host calls
    /// PublisherStream::replay_turn_granted(id) when its turn comes.
    virtual bool take_replay_turn(PublisherStream& stream, std::uint64_t id) {
        (void)stream;
        (void)id;
        return true;
    }
    /// Request `id` no longer needs its turn (it ended), or no longer waits for one.
    virtual void give_back_replay_turn(PublisherStream& stream, std::uint64_t id) {
        (void)stream;
        (void)id;
    }
    /// The stream's replay socket was just opened, or is about to be closed.
    virtual void replay_socket_opened(PublisherStream& stream) { (void)stream; }
    virtual void replay_socket_closing(PublisherStream& stream) { (void)stream; }
};

/// Where a LiveSubscription sends what its socket receives: one stream, or a demultiplexer that
/// routes each batch to the stream of its topic.
class LiveSink {
public:
    virtual ~LiveSink() = default;
    virtual void on_live(RawBatch batch, TimePoint now) = 0;
    virtual void on_backlog(TimePoint now) = 0;
    virtual void on_connection(ConnectionState state, const std::string& peer) = 0;
    virtual void on_not_connected(std::string detail) = 0;
    virtual void on_receive_error(std::optional<std::uint64_t> sequence, std::string detail) = 0;
    virtual void count_bytes(std::size_t bytes) = 0;
};

class PublisherStream final : public LiveSink, private StreamActions {
public:
    /// `options` are this stream's own (pod key, model, timeouts); `replay_endpoint` empty: no
    /// replay.
    PublisherStream(ClientOptions options,
                    std::string replay_endpoint,
                    EventHandler& handler,
                    std::shared_ptr<spdlog::logger> log,
                    zmq::context_t& context,
                    StreamHost& host);
    ~PublisherStream() override;
    PublisherStream(const PublisherStream&) = delete;
    PublisherStream& operator=(const PublisherStream&) = delete;

    const ClientOptions& options() const { return options_; }
    const std::string& replay_endpoint() const { return replay_endpoint_; }

    /// Each replay gets a fresh DEALER later; connecting one to the address now turns a bad one
    /// into an error (zmq::error_t) when the publisher is added, instead of failed replays at the
    /// first gap. Does nothing without a replay endpoint.
    void check_replay_endpoint() const;
    /// This stream stands for a bound fan-in socket: it carries the socket's notices, never a
    /// batch, so it never announces readiness. Call before start().
    void mark_socket_only() { readiness_ = Readiness::kNever; }
    /// This stream is one topic behind a bound fan-in socket, whose own stream warns about the
    /// socket's disconnects: this one logs them at info level.
    void mark_behind_fan_in() { disconnects_warned_elsewhere_ = true; }
    /// Begins the start-up replay, if configured.
    void start(TimePoint now);
    /// Closes the replay socket and gives back any replay turn; no handler call follows.
    void close();

    // LiveSink: what the live socket brings.
    void on_live(RawBatch batch, TimePoint now) override;
    void on_backlog(TimePoint now) override;
    void on_connection(ConnectionState next, const std::string& peer) override;
    void on_not_connected(std::string detail) override;
    void on_receive_error(std::optional<std::uint64_t> sequence, std::string detail) override;
    void count_bytes(std::size_t bytes) override { unflushed_bytes_ += bytes; }
    void count_wakeup() { ++unflushed_wakeups_; }
    /// A message lost for want of memory (nothing more is said: saying it could fail too).
    void count_decode_error() {
        update_stats([](ClientStats& s) { ++s.decode_errors; });
    }

    ConnectionState connection_state() const { return state_; }

    /// The socket of the replay in progress; null when none is.
    zmq::socket_t* replay_socket() const { return dealer_.get(); }
    /// Reads what the replay socket holds (a bounded number of messages).
    void drain_replay();
    /// The host's answer to take_replay_turn() == false: request `id` may be sent now.
    void replay_turn_granted(std::uint64_t id, TimePoint now);

    std::optional<TimePoint> next_deadline() const { return machine_.next_deadline(); }
    void on_tick(TimePoint now);
    /// Adds the counts kept on the loop thread to the statistics.
    void flush_loop_stats();

    /// From any thread: no handler call starts after this returns, other than one in progress.
    void stop_delivery() { stopped_ = true; }
    bool delivery_stopped() const { return stopped_; }
    /// The stream cannot go on: state `failed`, and a last notice if `tell_handler` (even after
    /// stop_delivery).
    void fail(const std::string& why, bool tell_handler);
    /// State `stopped`, unless it failed.
    void mark_stopped();

    /// From any thread.
    ClientStats stats() const;

private:
    template <class F>
    void update_stats(F&& f) {
        std::lock_guard<std::mutex> lock(stats_mu_);
        f(stats_);
    }
    template <class F>
    void update_loop_stats(F&& f) {
        std::lock_guard<std::mutex> lock(stats_mu_);
        stats_.bytes += std::exchange(unflushed_bytes_, 0);
        stats_.wakeups += std::exchange(unflushed_wakeups_, 0);
        f(stats_);
    }
    template <class... Args>
    void log_error(spdlog::format_string_t<Args...> fmt, Args&&... args);

    StreamNotice make_notice(StreamNotice::Kind kind) const;
    void notify(StreamNotice notice);
    void handler_notice(StreamNotice notice);
    void notice_handler_failed(StreamNotice::Kind kind, const std::string& what);
    void report_decode_error(std::optional<std::uint64_t> seq, std::string detail);
    void deliver_decoded(RawBatch& raw);
    void handler_failed(std::uint64_t seq, const std::string& what);
    bool send_replay_request(std::uint64_t from, ReplayPurpose why);
    void close_replay_socket();
    void drain_replay_messages();
    void replay_went_unanswered(ReplayPurpose why);
    void log_loss(const std::string& what);
    void check_ready();

    // StreamActions
    void deliver(RawBatch& raw) override;
    void announce_restart(std::uint64_t revealed_by) override;
    void announce_continuity_lost(std::uint64_t next_sequence) override;
    void announce_loss(std::uint64_t first, std::uint64_t last) override;
    ReplaySend request_replay(std::uint64_t id, std::uint64_t from, ReplayPurpose why) override;
    void replay_ended(std::uint64_t id, ReplayOutcome outcome) override;
    void duplicate_dropped(std::uint64_t) override;
    void buffer_overflow(std::uint64_t) override;
    void gap_detected(std::uint64_t first_missing, std::uint64_t seen) override;

    struct WaitingRequest {
        std::uint64_t id;
        std::uint64_t from;
        ReplayPurpose purpose;
    };

    const ClientOptions options_;
    const std::string replay_endpoint_;
    EventHandler& handler_;
    const std::shared_ptr<spdlog::logger> log_;
    zmq::context_t& context_;
    StreamHost& host_;
    std::atomic<bool> stopped_{false};

    mutable std::mutex stats_mu_;
    ClientStats stats_;  // guarded by stats_mu_

    StreamStateMachine machine_;
    LogRateLimiter error_log_;
    std::unique_ptr<zmq::socket_t> dealer_;   // the current replay request's socket
    std::uint64_t replay_id_ = 0;             // the request `dealer_` belongs to
    std::optional<WaitingRequest> waiting_;   // a request waiting for its turn
    std::optional<std::uint64_t> turn_held_;  // the request holding a turn
    ReceivedBatch delivery_;                  // what the handler gets, reused
    // Readiness (kReady): whether the start-up history is still to settle (see
    // StreamStateMachine::history_settled), and how it did.
    enum class Readiness : std::uint8_t { kAwaitingHistory, kAwaitingConnection, kReady, kNever };
    Readiness readiness_;
    std::string history_outcome_;
    bool disconnects_warned_elsewhere_ = false;
    // The replay endpoint's silence: whether the request in flight got any reply, and whether the
    // last one that ended got none (while so, losses are logged quietly: one warning per backoff
    // has named the cause).
    ReplayPurpose replay_purpose_ = ReplayPurpose::kStartup;
    bool replay_replied_ = false;
    bool replay_silent_ = false;
    // Operators should see a pod go away at the default level, but not every flap of one.
    LogRateLimiter disconnect_log_{1, std::chrono::seconds(10)};
    ConnectionState state_ = ConnectionState::kConnecting;
    bool ever_connected_ = false;
    // Counted on the loop thread and added to the statistics with the next batch's update, so a
    // batch takes the statistics lock once.
    std::uint64_t unflushed_bytes_ = 0;
    std::uint64_t unflushed_wakeups_ = 0;
    std::string last_live_topic_;  // replies before vLLM v0.26 carry no topic
    std::vector<zmq::message_t> parts_;
    std::vector<std::string_view> frame_views_;
};

}  // namespace kvevents::detail

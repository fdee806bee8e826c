#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <kvevents/client_options.h>
#include <kvevents/event_handler.h>

namespace kvevents {

/// Counters since construction; a consistent snapshot of one client.
struct ClientStats {
    std::uint64_t batches = 0;         // delivered to the handler
    std::uint64_t events = 0;          // delivered to the handler
    std::uint64_t bytes = 0;           // payload bytes received (live and replay)
    std::uint64_t decode_errors = 0;   // payloads or events that failed to decode, bad frames
    std::uint64_t unknown_events = 0;  // events with an unknown tag, skipped
    std::uint64_t gaps_detected = 0;   // sequence jumps on the live stream
    std::uint64_t replays_requested = 0;
    std::uint64_t replays_completed = 0;
    std::uint64_t replays_failed = 0;     // timed out, could not be sent, or abandoned
    std::uint64_t batches_recovered = 0;  // delivered from replay
    std::uint64_t batches_unrecoverable = 0;
    std::uint64_t duplicates_dropped = 0;
    std::uint64_t live_dropped_while_buffering = 0;  // hold buffer full (refetched or announced)
    std::uint64_t restarts = 0;
    std::uint64_t continuity_lost = 0;  // kContinuityLost notices
    std::uint64_t reconnects = 0;
    std::uint64_t handler_errors = 0;  // on_batch or on_notice threw
    std::uint64_t wakeups = 0;         // times the loop woke; an idle client (no timer due) none
    std::optional<std::uint64_t> last_sequence;
    std::chrono::microseconds last_lag{0};  // batch ts to handler call
    std::chrono::microseconds max_lag{0};
    ConnectionState state = ConnectionState::kConnecting;
    /// The kReady notice was sent: the start-up replay is over and the live stream connected.
    bool ready = false;
};

/// Follows one publisher: a SUB socket for the live stream and a DEALER socket for replay, both
/// owned by one background thread that decodes batches and calls the handler.
///
/// Thread safety: every member function may be called from any thread. The handler runs on the
/// client's thread only, never concurrently with itself.
class ZmqClient {
public:
    /// Validates options (throws std::invalid_argument naming the field). Does not start.
    ZmqClient(ClientOptions options, EventHandler& handler);
    /// Stops and joins. Must not run inside this client's own handler (the thread cannot join
    /// itself): call Stop() there and destroy the client elsewhere.
    ~ZmqClient();
    ZmqClient(const ZmqClient&) = delete;
    ZmqClient& operator=(const ZmqClient&) = delete;

    /// Opens the sockets on a new poll-loop thread and returns once they are open. Throws
    /// std::runtime_error naming the endpoint if it cannot be bound or connected to (an
    /// unreachable publisher is not an error: the client waits and reconnects), and
    /// std::logic_error if called twice.
    void Start();
    /// Idempotent; returns once the loop has exited and no handler call is running (at once, or
    /// when a handler call in progress returns). From inside the handler it only requests the
    /// stop: the current call returns normally and no further handler call starts.
    void Stop();
    bool running() const;

    ClientStats stats() const;
    /// The live endpoint as opened: with bind and a wildcard port ("tcp://127.0.0.1:*"), the
    /// address actually bound. Empty before Start().
    std::string live_endpoint() const;
    const ClientOptions& options() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvevents

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <kvevents/events.h>
#include <kvevents/testing/encoder.h>

namespace kvevents::testing {

/// How replay replies are framed (after the DEALER's empty delimiter).
enum class ReplayEnvelope {
    kWithTopic,     // [topic, seq, payload]; end [ "", ff*8, "" ] (vLLM v0.26+, TensorRT-LLM)
    kWithoutTopic,  // [seq, payload]; end [ff*8, ""] (vLLM up to v0.25, SGLang)
};

struct MockPublisherOptions {
    /// Where the PUB socket binds. "tcp://127.0.0.1:*" picks a free port; read endpoint().
    std::string endpoint = "tcp://127.0.0.1:*";
    /// Where the ROUTER replay socket binds; empty: no replay socket (vLLM's default).
    std::string replay_endpoint = "tcp://127.0.0.1:*";
    /// Connect the PUB socket to `endpoint` instead of binding (an engine configured with a
    /// concrete host connects out; the subscriber binds).
    bool connect = false;
    std::string topic;
    /// Stamped into each batch's envelope unless the batch sets its own.
    std::optional<std::int64_t> data_parallel_rank = 0;
    EncodeOptions encoding;
    ReplayEnvelope replay_envelope = ReplayEnvelope::kWithTopic;
    /// Batches kept for replay, like vLLM's buffer_steps.
    std::size_t buffer_steps = 10000;
    /// wait_for_subscriber() sees every subscription, also a second subscriber's to a topic
    /// already subscribed (ZMQ_XPUB_VERBOSE); otherwise only the first.
    bool report_every_subscription = false;
    /// Replies past this many in one replay are dropped, end marker included, as the real
    /// ROUTER drops them past its send high-water mark (1000). 0: never drop.
    std::size_t replay_drop_after = 0;
};

/// An in-process publisher that behaves like vLLM's ZmqEventPublisher: a PUB socket sending
/// [topic, seq, payload] and a ROUTER replay socket served from a ring buffer of recent batches,
/// plus fault injection for tests.
///
/// Thread safety: publishing and fault-injection calls must come from one thread at a time; the
/// replay socket is served by an internal thread.
class MockPublisher {
public:
    explicit MockPublisher(MockPublisherOptions options = {});
    ~MockPublisher();
    MockPublisher(const MockPublisher&) = delete;
    MockPublisher& operator=(const MockPublisher&) = delete;

    /// The bound (or connected) endpoints, with real port numbers.
    std::string endpoint() const;
    std::string replay_endpoint() const;

    /// Blocks until a subscriber's subscription has reached the PUB socket, or the timeout.
    bool wait_for_subscriber(std::chrono::milliseconds timeout);

    /// Encodes, buffers for replay and sends one batch; returns its sequence number.
    std::uint64_t publish(const EventBatch& batch);
    /// Buffers and sends an already-encoded payload.
    std::uint64_t publish_payload(const std::string& payload);
    /// The next sequence number publish() will use.
    std::uint64_t next_sequence() const;

    // Fault injection.

    /// These sequence numbers are buffered for replay but not sent live (as PUB HWM loss).
    void drop_live(const std::set<std::uint64_t>& sequences);
    /// Drops each live batch with this probability (0..1), deterministically from `seed`.
    void drop_live_randomly(double probability, std::uint64_t seed);
    /// Sends arbitrary frames on the PUB socket (malformed messages).
    void send_raw_frames(const std::vector<std::string>& frames);
    /// Stops answering replay requests (they are read and ignored, as a bad request is).
    void set_replay_enabled(bool enabled);
    /// A new engine incarnation on the same sockets: sequence back to 0, buffer emptied.
    void restart();
    /// Closes both sockets, as a killed engine does; publishing is an error until reopen().
    void close();
    /// Binds the same endpoints again (same ports), as a restarted engine does. The sequence and
    /// buffer restart from scratch unless keep_history.
    void reopen(bool keep_history = false);

    /// Replay requests served so far.
    std::size_t replays_served() const;
    /// Well-formed replay requests read while replay was disabled, and dropped.
    std::size_t replays_ignored() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvevents::testing

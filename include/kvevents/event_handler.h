#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <kvevents/events.h>

namespace kvevents {

/// One batch as the handler sees it: where it came from and what it says. A value: the handler
/// may copy it, or move from it (the decoded events included) to keep it past the call without a
/// deep copy; the client does not look at it again.
struct ReceivedBatch {
    std::string pod_key;
    std::string model_name;
    std::uint64_t sequence = 0;
    std::string topic;
    /// The decoded payload: ts, data_parallel_rank and the events that decoded.
    EventBatch batch;
    /// True when this batch came from the replay socket rather than the live stream.
    bool replayed = false;
    /// The publisher's data-parallel rank (ClientOptions::data_parallel_rank): with the pod key,
    /// what identifies the publisher.
    int data_parallel_rank = 0;
};

enum class ConnectionState : std::uint8_t {
    kConnecting,    // no peer yet
    kConnected,     // a peer is connected on the live socket
    kDisconnected,  // the peer went away; libzmq reconnects with backoff
    kStopped,       // Stop() was called (ClientStats::state only)
    kFailed,        // the client stopped on an error it cannot go on from
};

const char* to_string(ConnectionState state);

/// Something about the stream rather than its contents. A value: it can be copied, stored and
/// queued.
struct StreamNotice {
    enum class Kind : std::uint8_t {
        /// The publisher restarted (sequence went back). Forget this pod's blocks: the new
        /// incarnation's batches follow this notice.
        kPublisherRestarted,
        /// Batches first..last of the incarnation followed are lost for good: the publisher's
        /// replay answered without them (no longer held, or never buffered), or replay is off.
        /// The index for this pod may be stale.
        kUnrecoverableGap,
        /// kvevents cannot prove that the publisher is still the incarnation it followed, so a
        /// restart may hide here: after a reconnect the replay endpoint did not answer or no
        /// longer holds the last batch delivered; a hole had to be given up while the replay
        /// endpoint was not answering (its missing batches could be a restart's first ones); or,
        /// with replay off, the sequence jumped after a reconnect. Act as on a restart: forget
        /// this pod's blocks. Delivery goes on from `first_sequence`.
        kContinuityLost,
        /// A payload or frame could not be decoded; `detail` says why.
        kDecodeError,
        /// The live connection changed state; see `state`.
        kConnectionChanged,
        /// The handler threw; `detail` has the exception's message.
        kHandlerError,
        /// No publisher has connected within ClientOptions::connect_warning_after of Start();
        /// `detail` names the endpoint and the likely causes. Once per client; the client keeps
        /// trying.
        kNotConnected,
        /// From HashingCheck: the block hashes this publisher sends are the ones the gateway's
        /// BlockHasher computes. Comes at the first verified block, and again after a mismatch
        /// once blocks match again.
        kHashesMatch,
        /// From HashingCheck: a stored block's hash differs from the one the gateway's
        /// BlockHasher computes from the event, so the gateway's prompt hashes will never match
        /// this publisher's: its hash algorithm, PYTHONHASHSEED or block size differs from the
        /// engine's. `detail` shows the block. Once, until blocks match again.
        kHashMismatch,
        /// The publisher's picture is complete and the stream is live: the start-up replay has
        /// ended (or none was asked for) and the live socket is connected. A gateway can route to
        /// this publisher from here on. `detail` says how the history was obtained; when the
        /// start-up replay failed, blocks stored before the live stream are unknown (the replay
        /// is asked again after a backoff). Once per client; ClientStats::ready turns true.
        kReady,
    };

    Kind kind = Kind::kDecodeError;
    std::string pod_key;
    std::optional<std::uint64_t> first_sequence;  // gaps, restarts, decode errors
    std::optional<std::uint64_t> last_sequence;   // gaps
    ConnectionState state = ConnectionState::kConnecting;
    std::string detail;
    int data_parallel_rank = 0;  // of the publisher, as in ReceivedBatch
};

const char* to_string(StreamNotice::Kind kind);

/// Receives a ZmqClient's output. Both calls run on the client's own thread, one at a time, in
/// sequence order; a slow handler delays the stream (libzmq buffers up to the receive HWM).
/// Exceptions are caught, counted and reported as kHandlerError notices.
class EventHandler {
public:
    virtual ~EventHandler() = default;
    /// `batch` is the handler's to keep: it may move from it (e.g. `queue.push(std::move(batch))`
    /// hands the decoded events to another thread without copying them). An adapter that passes
    /// the batch on to another handler moves from it only after that call.
    virtual void on_batch(ReceivedBatch& batch) = 0;
    virtual void on_notice(const StreamNotice& notice) { (void)notice; }
};

/// An EventHandler built from callables.
class LambdaEventHandler final : public EventHandler {
public:
    using BatchFn = std::function<void(ReceivedBatch&)>;
    using NoticeFn = std::function<void(const StreamNotice&)>;

    explicit LambdaEventHandler(BatchFn on_batch, NoticeFn on_notice = {})
        : on_batch_(std::move(on_batch)), on_notice_(std::move(on_notice)) {}

    void on_batch(ReceivedBatch& batch) override {
        if (on_batch_)
            on_batch_(batch);
    }
    void on_notice(const StreamNotice& notice) override {
        if (on_notice_)
            on_notice_(notice);
    }

private:
    BatchFn on_batch_;
    NoticeFn on_notice_;
};

}  // namespace kvevents

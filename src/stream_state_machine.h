#pragma once

// The whole protocol of following one publisher, as one state machine free of sockets and
// clocks: which batch to deliver and when, which to hold, when to ask for a replay and how to
// read its answer, and when a loss, a restart or an unprovable continuity must be announced.
// The client (and any other shell) turns socket events into calls here and carries out the
// actions it is given; time comes in as a value, so every interleaving can be replayed in a test.
//
// Invariants (checked after every step by tests/unit/stream_model_test.cpp):
//  I1  Every sequence of every publisher incarnation is delivered exactly once, in order, or lies
//      inside an announced lost range, or is covered by a restart or continuity-lost notice.
//  I2  A restart (or continuity-lost) notice precedes the first delivered batch of every new
//      incarnation.
//  I3  No batch is held longer than replay_total_timeout (plus the shell's reaction time to
//      next_deadline()).
//  I4  The replies to a replay that was ended (completed, timed out, cancelled) are ignored: they
//      reach neither the handler nor any action.
//  I5  Memory held is bounded by max_buffered batches (held batches, copied to their own size,
//      and digests of replayed ones), plus the last delivered batch.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <zmq.hpp>

namespace kvevents::detail {

using StreamClock = std::chrono::steady_clock;
using TimePoint = StreamClock::time_point;

/// The sooner of two deadlines, either of which may be unset.
inline std::optional<TimePoint> earliest(std::optional<TimePoint> a, std::optional<TimePoint> b) {
    if (a && b)
        return std::min(*a, *b);
    return a ? a : b;
}

/// A received batch before decoding: delivery order depends only on its sequence number. It owns
/// the frames as they were received, moved out of the socket rather than copied.
struct RawBatch {
    RawBatch() = default;
    RawBatch(std::uint64_t seq,
             zmq::message_t topic_frame,
             zmq::message_t payload_frame,
             bool from_replay)
        : sequence(seq),
          topic(std::move(topic_frame)),
          payload(std::move(payload_frame)),
          replayed(from_replay) {}
    /// Copies the bytes: for tests, and for replies that carry no topic of their own.
    RawBatch(std::uint64_t seq,
             std::string_view topic_text,
             std::string_view payload_bytes,
             bool from_replay)
        : RawBatch(seq, zmq::message_t(topic_text), zmq::message_t(payload_bytes), from_replay) {}

    std::string_view topic_view() const { return topic.to_string_view(); }
    std::string_view payload_view() const { return payload.to_string_view(); }

    std::uint64_t sequence = 0;
    zmq::message_t topic;
    zmq::message_t payload;
    bool replayed = false;
};

/// Why a replay was asked for (logged, and the tail probe's completion is what confirms a quiet
/// stream's tail).
enum class ReplayPurpose : std::uint8_t {
    kStartup,    // history from start_sequence, or a new incarnation's from 0
    kGap,        // a hole in the sequence
    kVerify,     // after a reconnect: is this still the incarnation we followed?
    kTailProbe,  // the stream went quiet after a possible loss: is anything missing at the end?
};
const char* to_string(ReplayPurpose purpose);

/// What became of a replay request the shell was asked to send.
enum class ReplaySend : std::uint8_t {
    kSent,        // on its way: the replay's timers run from now
    kWaiting,     // queued behind other publishers' replays (a fleet caps how many run at once);
                  // no timer runs until on_replay_sent()
    kUnsendable,  // it cannot be sent (e.g. no socket could be opened)
};

/// How a replay request ended.
enum class ReplayOutcome : std::uint8_t {
    kCompleted,   // the end marker arrived
    kTimedOut,    // idle or total timeout
    kUnsendable,  // the request could not be sent (e.g. no socket could be opened)
    kAbandoned,   // held batches reached their time limit while it ran
    kCancelled,   // superseded: a reconnect needs verification, or the publisher restarted
};

/// What the state machine asks of its shell. Calls arrive in the order the handler must see them.
class StreamActions {
public:
    virtual ~StreamActions() = default;
    /// Hand a batch to the handler. The payload must be left intact (it is kept to verify).
    virtual void deliver(RawBatch& batch) = 0;
    /// The publisher restarted: forget its blocks. `revealed_by` is the sequence that showed it
    /// (0 when a replay showed it).
    virtual void announce_restart(std::uint64_t revealed_by) = 0;
    /// Batches first..last of the current incarnation are lost for good.
    virtual void announce_loss(std::uint64_t first, std::uint64_t last) = 0;
    /// The publisher may have restarted and it cannot be proven either way: forget its blocks.
    /// Delivery goes on from `next_sequence`.
    virtual void announce_continuity_lost(std::uint64_t next_sequence) = 0;
    /// Send a replay request for every batch from `from` on, tagged `id`. Replies reach the
    /// machine with that id. A request that must wait its turn is sent later, followed by
    /// on_replay_sent().
    virtual ReplaySend request_replay(std::uint64_t id,
                                      std::uint64_t from,
                                      ReplayPurpose purpose) = 0;
    /// Request `id` is over (waiting or sent): close its socket or give up its turn. Nothing
    /// received for it may be passed on.
    virtual void replay_ended(std::uint64_t id, ReplayOutcome outcome) = 0;
    // Statistics.
    virtual void duplicate_dropped(std::uint64_t sequence) = 0;
    virtual void buffer_overflow(std::uint64_t dropped_sequence) = 0;
    virtual void gap_detected(std::uint64_t expected, std::uint64_t seen) = 0;
};

struct StreamConfig {
    /// Whether a replay endpoint exists at all.
    bool replay_available = true;
    /// Replay from it at start (nullopt: begin with whatever arrives live).
    std::optional<std::uint64_t> start_sequence = 0;
    /// Held batches (and digests of replayed batches) kept at most.
    std::size_t max_buffered = 10000;
    std::chrono::milliseconds replay_idle_timeout{2000};
    /// Also the longest any batch is held (I3).
    std::chrono::milliseconds replay_total_timeout{30000};
    std::chrono::milliseconds backoff_initial{1000};
    std::chrono::milliseconds backoff_max{30000};
    /// Quiet time after which a stream that may have lost its tail is probed; zero: never.
    std::chrono::milliseconds tail_probe_idle{1000};
};

class StreamStateMachine {
public:
    // The phases. Exactly one holds at any time.
    struct Live {};
    struct Replaying {
        std::uint64_t id = 0;
        ReplayPurpose purpose = ReplayPurpose::kGap;
        std::uint64_t from = 0;
        bool anchored = false;      // asked from the last delivered batch, whose bytes must match
        bool proves_bytes = false;  // ... and those bytes are known (not an anchor by number)
        std::uint64_t next_at_request = 0;
        // Delivery moved on while it ran (its replies, or held batches they released).
        bool advanced(std::uint64_t next) const { return next > next_at_request; }
        std::optional<std::uint64_t> highest_reply;  // set once any reply arrived
        bool answered() const { return highest_reply.has_value(); }
        // Queued behind other publishers' replays: its timers start when it is sent. Held
        // batches still expire (I3).
        bool waiting_turn = false;
        TimePoint started;
        TimePoint last_reply;
        std::uint64_t order = 0;  // of the request among held batches (see Held::order)
    };
    struct BackingOff {
        TimePoint until;  // the replay endpoint did not answer: gaps are announced at once
    };
    using Phase = std::variant<Live, Replaying, BackingOff>;

    StreamStateMachine(StreamActions& actions, StreamConfig config);

    /// The sockets are up: starts the start-up replay if configured.
    void start(TimePoint now);
    void on_live(RawBatch batch, TimePoint now);
    void on_replay_batch(std::uint64_t replay_id, RawBatch batch, TimePoint now);
    void on_replay_end(std::uint64_t replay_id, TimePoint now);
    /// A request that had to wait its turn (ReplaySend::kWaiting) was sent now.
    void on_replay_sent(std::uint64_t replay_id, TimePoint now);
    /// The live connection came back after a disconnect: the publisher may be a new incarnation.
    void on_reconnected(TimePoint now);
    /// The live socket had a backlog: the queues may have dropped batches, possibly the last ones.
    void on_backlog(TimePoint now);
    /// Time has passed; call at next_deadline() (or later, or earlier: it is harmless).
    void on_tick(TimePoint now);
    /// When on_tick must next be called; nullopt: no timer is pending.
    std::optional<TimePoint> next_deadline() const;

    const Phase& phase() const { return phase_; }
    std::size_t held() const { return pending_.size(); }
    std::size_t digests_kept() const { return recent_digests_.size(); }
    /// When the batch held longest arrived.
    std::optional<TimePoint> oldest_hold() const;
    /// Whether delivery waits for a replay to prove the publisher is the one we followed.
    bool continuity_unproven() const { return unproven_; }
    /// Whether a quiet stream will be probed for a lost tail.
    bool tail_probe_wanted() const { return probe_wanted_; }
    /// Whether the history asked for at start is settled: delivered (no replay runs and none is
    /// wanted), or given up for now because the replay endpoint failed (backing off).
    bool history_settled() const {
        return std::holds_alternative<BackingOff>(phase_) || (!history_wanted_ && !replaying());
    }
    bool backing_off() const { return std::holds_alternative<BackingOff>(phase_); }

private:
    struct Held {
        RawBatch batch;
        TimePoint arrived;
        std::uint64_t order;      // counts holds and requests: which came first, whatever the clock
        std::uint64_t replay_id;  // the replay it came from; 0: live
    };
    struct Anchor {
        std::uint64_t sequence;
        std::optional<zmq::message_t> payload;  // nullopt: a start position, known by number only
    };

    Replaying* active_replay(std::uint64_t id);
    bool replaying() const { return std::holds_alternative<Replaying>(phase_); }
    bool has_hole() const;
    void note_known(std::uint64_t sequence);
    enum class Copy { kSame, kDifferent, kUnknown };
    Copy compare_with_delivered(std::uint64_t sequence, std::string_view payload) const;
    void untrusted_live(const RawBatch& batch, TimePoint now);
    bool contradicts_history(const RawBatch& reply) const;
    bool awaits_replay(std::uint64_t sequence, std::uint64_t source_replay) const;
    template <class Predicate>
    bool held_beyond(const Replaying& finished, Predicate held_from) const;
    void deliver(RawBatch& batch);
    void hold(RawBatch batch, TimePoint now);
    void flush();
    void settle(TimePoint now, bool replay_allowed = true);
    void begin_replay(ReplayPurpose purpose, TimePoint now, bool from_next = false);
    void end_replay(ReplayOutcome outcome);
    void endpoint_answered();
    void back_off(TimePoint now, bool it_answered);
    bool replay_usable() const {
        return config_.replay_available && !std::holds_alternative<BackingOff>(phase_);
    }
    void forget_history();
    void drop_held_before_reconnect();
    void first_reply(Replaying& replay, const RawBatch& batch, TimePoint now, bool& consumed);
    void skip_to(std::uint64_t first_available);
    void lose_continuity(std::uint64_t next_sequence);
    void give_up_first_hole(bool provable);
    void expire_holds(TimePoint now);
    void restart(std::uint64_t revealed_by, TimePoint now);
    void untie_live();
    void forget_incarnation();

    StreamActions& actions_;
    const StreamConfig config_;

    Phase phase_ = Live{};
    std::uint64_t last_replay_id_ = 0;
    std::uint64_t order_ = 0;
    std::uint64_t reconnect_order_ = 0;  // order_ at the last reconnect that needs verifying
    std::chrono::milliseconds backoff_length_;
    int empty_replays_ = 0;  // answered replays in a row that closed no hole
    // Whether the last replay answered. When it did not, a hole given up may hide a restart
    // (its first batches lost on the way), so it is announced as lost continuity.
    bool replay_answering_ = true;

    std::optional<std::uint64_t> next_;        // next sequence to deliver
    std::optional<std::uint64_t> known_high_;  // highest sequence known to exist
    std::optional<std::uint64_t> last_live_;   // highest live sequence of this incarnation
    std::map<std::uint64_t, Held> pending_;    // received ahead of next_
    TimePoint hold_check_at_;                  // no held batch expires before this
    std::optional<Anchor> anchor_;             // the last delivered batch
    // (sequence, digest) of recent batches a replay or a late live copy may repeat, ascending:
    // a copy is told from another incarnation's batch by its bytes.
    std::deque<std::pair<std::uint64_t, std::size_t>> recent_digests_;
    bool unproven_ = false;
    bool history_wanted_ = false;  // a start-up replay has yet to complete
    // After a replay showed a restart, live batches of the old incarnation may still be queued:
    // live batches are only hints until one matches its replayed copy byte for byte.
    bool live_trusted_ = true;
    // While nothing is delivered (at start, after lost continuity), the next delivery decides
    // what the live stream is checked against: from live, it is the history; from replay, live
    // batches become hints like those above (the old incarnation's may still be queued).
    bool next_delivery_decides_ = false;
    // (sequence, digest) of the latest live batch set aside: when replay delivers the same bytes,
    // the live stream is known to be at that point of the new incarnation.
    std::optional<std::pair<std::uint64_t, std::size_t>> set_aside_;
    bool probe_wanted_ = false;
    TimePoint quiet_since_;  // the last live batch, reconnect or backlog
};

}  // namespace kvevents::detail

#pragma once

// The ordering logic of one publisher's stream, free of sockets and clocks so every case can be
// tested directly: which batches to deliver and when, which to hold, which to drop as duplicates,
// when to ask for a replay, and when a loss or a publisher restart must be reported.
//
// A reconnect needs no special case: a jump ahead is a gap healed by replay, and a step back on the
// live stream (which never repeats itself within one publisher's life) is a restart.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace kvevents::detail {

/// A received batch before decoding: delivery order depends only on its sequence number.
struct RawBatch {
    std::uint64_t sequence = 0;
    std::string topic;
    std::string payload;
    bool replayed = false;
};

/// What the sequencer asks of its owner. Calls arrive in the order the handler must see them.
class SequencerSink {
public:
    virtual ~SequencerSink() = default;
    virtual void deliver(RawBatch& batch) = 0;
    virtual void publisher_restarted(std::uint64_t first_new_sequence) = 0;
    virtual void unrecoverable(std::uint64_t first, std::uint64_t last) = 0;
    /// Ask the publisher for every batch from `from` on. Replies to any earlier request must
    /// not be passed on after this (the owner starts a fresh replay socket).
    virtual void request_replay(std::uint64_t from) = 0;
    virtual void duplicate_dropped(std::uint64_t sequence) = 0;
    virtual void buffer_overflow(std::uint64_t dropped_sequence) = 0;
    virtual void gap_detected(std::uint64_t first_missing, std::uint64_t seen) = 0;
};

class StreamSequencer {
public:
    /// replay_available: whether a replay endpoint exists at all. start_sequence: replay from it
    /// at start (nullopt: begin with whatever arrives live).
    StreamSequencer(SequencerSink& sink,
                    bool replay_available,
                    std::optional<std::uint64_t> start_sequence,
                    std::size_t max_buffered);

    /// Called once, when the sockets are up: starts the start-up replay if configured.
    void start();
    void on_live(RawBatch batch);
    void on_replay_batch(RawBatch batch);
    /// The replay's end marker arrived.
    void on_replay_end();
    /// The replay timed out (idle or total). `backoff_active` afterwards says whether new gaps
    /// are reported as lost at once rather than replayed, until replay_backoff_over().
    void on_replay_timeout();
    /// The backoff after a failed replay has passed: gaps may be replayed again.
    void replay_backoff_over() {
        backoff_ = false;
        if (verify_pending_)
            on_reconnected();
    }
    /// The live connection came back after a disconnect. With replay available, asks for the
    /// last delivered batch again and everything after it: batches sent while disconnected are
    /// fetched, and if the publisher's copy of the last batch differs (or it has none), the
    /// publisher restarted while we were away, which the sequence alone cannot show once the new
    /// incarnation has caught up.
    void on_reconnected();

    bool replay_in_flight() const { return replay_in_flight_; }
    bool backoff_active() const { return backoff_; }
    std::optional<std::uint64_t> next_expected() const { return next_; }
    std::size_t buffered() const { return pending_.size(); }

private:
    void deliver_in_order(RawBatch& batch);
    void hold(RawBatch batch);
    void flush_contiguous();
    void after_replay(bool timed_out);
    void begin_replay(std::uint64_t from);
    void give_up_hole();
    void restart(std::uint64_t first_new_sequence);
    bool verify_reply(const RawBatch& batch);
    void restart_found_by_replay();

    SequencerSink& sink_;
    const bool replay_available_;
    const std::optional<std::uint64_t> start_sequence_;
    const std::size_t max_buffered_;

    std::optional<std::uint64_t> next_;          // next sequence to deliver
    std::optional<std::uint64_t> last_live_;     // highest live sequence seen this incarnation
    std::map<std::uint64_t, RawBatch> pending_;  // received out of order, waiting for a hole
    bool replay_in_flight_ = false;
    bool replay_progress_ = false;   // the current replay delivered something
    bool replay_saw_first_ = false;  // the current replay sent its first batch
    bool backoff_ = false;
    bool verifying_ = false;       // the current replay starts at the last delivered
    bool verify_pending_ = false;  // a reconnect happened while replay was busy
    int empty_replays_ = 0;        // answered replays in a row that brought nothing we need
    std::optional<std::uint64_t> last_delivered_;
    std::string last_payload_;  // the last delivered batch's bytes, for verification
};

}  // namespace kvevents::detail

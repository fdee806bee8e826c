#include "stream_sequencer.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace kvevents::detail {

StreamSequencer::StreamSequencer(SequencerSink& sink,
                                 bool replay_available,
                                 std::optional<std::uint64_t> start_sequence,
                                 std::size_t max_buffered)
    : sink_(sink),
      replay_available_(replay_available),
      start_sequence_(start_sequence),
      max_buffered_(max_buffered == 0 ? 1 : max_buffered) {}

void StreamSequencer::start() {
    if (!start_sequence_)
        return;
    next_ = start_sequence_;
    if (replay_available_) {
        begin_replay(*next_);
    }
}

void StreamSequencer::begin_replay(std::uint64_t from) {
    replay_in_flight_ = true;
    replay_progress_ = false;
    replay_saw_first_ = false;
    sink_.request_replay(from);
}

void StreamSequencer::deliver_in_order(RawBatch& batch) {
    next_ = batch.sequence + 1;
    sink_.deliver(batch);
    last_delivered_ = batch.sequence;
    last_payload_ = std::move(batch.payload);  // no longer needed by the sink; kept to verify
}

void StreamSequencer::hold(RawBatch batch) {
    const std::uint64_t seq = batch.sequence;
    if (pending_.count(seq) != 0) {
        sink_.duplicate_dropped(seq);
        return;
    }
    if (pending_.size() >= max_buffered_) {
        // Keep the oldest: they are next to deliver. The newest can be fetched again by replay.
        auto newest = std::prev(pending_.end());
        if (newest->first < seq) {
            sink_.buffer_overflow(seq);
            return;
        }
        sink_.buffer_overflow(newest->first);
        pending_.erase(newest);
    }
    pending_.emplace(seq, std::move(batch));
}

void StreamSequencer::flush_contiguous() {
    while (!pending_.empty()) {
        auto first = pending_.begin();
        if (next_ && first->first < *next_) {
            sink_.duplicate_dropped(first->first);
        } else if (!next_ || first->first == *next_) {
            deliver_in_order(first->second);
        } else {
            return;
        }
        pending_.erase(first);
    }
}

void StreamSequencer::restart(std::uint64_t first_new_sequence) {
    sink_.publisher_restarted(first_new_sequence);
    pending_.clear();
    replay_in_flight_ = false;
    verifying_ = false;
    verify_pending_ = false;
    empty_replays_ = 0;
    backoff_ = false;
    next_ = 0;
    last_delivered_.reset();
    last_payload_.clear();
}

// The replay shows a new incarnation but not where it starts: reported as starting at 0.
void StreamSequencer::restart_found_by_replay() {
    restart(0);
    last_live_.reset();
    begin_replay(0);
}

void StreamSequencer::on_reconnected() {
    if (!replay_available_ || !next_)
        return;
    if (backoff_ || replay_in_flight_) {
        verify_pending_ = true;  // checked as soon as the replay endpoint is free again
        return;
    }
    verify_pending_ = false;
    if (last_delivered_) {
        begin_replay(*last_delivered_);
        verifying_ = true;
    } else {
        begin_replay(*next_);
    }
}

// The first reply of a verifying replay: returns true when it was consumed here.
bool StreamSequencer::verify_reply(const RawBatch& batch) {
    verifying_ = false;
    if (!last_delivered_ || batch.sequence != *last_delivered_) {
        return false;  // the publisher no longer holds it: nothing to compare, carry on
    }
    if (batch.payload == last_payload_) {
        replay_progress_ = true;  // the endpoint answers and holds our history
        sink_.duplicate_dropped(batch.sequence);
        return true;
    }
    restart_found_by_replay();
    return true;
}

void StreamSequencer::on_live(RawBatch batch) {
    const std::uint64_t seq = batch.sequence;
    if (last_live_ && seq <= *last_live_) {
        // The live stream never repeats or goes back within one publisher's life.
        restart(seq);
    }
    last_live_ = seq;
    if (!next_) {
        next_ = seq;  // no start-up replay: begin with the first live batch
    }
    if (seq < *next_) {
        sink_.duplicate_dropped(seq);  // already delivered from replay
        return;
    }
    if (replay_in_flight_) {
        hold(std::move(batch));
        return;
    }
    if (seq == *next_ && pending_.empty()) {
        deliver_in_order(batch);
        return;
    }
    if (seq > *next_ && pending_.empty()) {
        sink_.gap_detected(*next_, seq);
    }
    hold(std::move(batch));
    flush_contiguous();
    if (pending_.empty())
        return;
    if (replay_available_ && !backoff_) {
        begin_replay(*next_);
    } else {
        give_up_hole();
    }
}

void StreamSequencer::on_replay_batch(RawBatch batch) {
    if (!replay_in_flight_) {
        // A late reply to an abandoned replay: its batches are either delivered already or
        // will be asked for again; taking them now could interleave two replays.
        sink_.duplicate_dropped(batch.sequence);
        return;
    }
    const bool first_of_replay = !replay_saw_first_;
    replay_saw_first_ = true;
    if (first_of_replay && verifying_ && verify_reply(batch)) {
        return;
    }
    const std::uint64_t seq = batch.sequence;
    if (seq < *next_) {
        sink_.duplicate_dropped(seq);
        return;
    }
    if (seq > *next_ && first_of_replay) {
        // The publisher no longer holds what was asked for: its history starts here. Batches we
        // hold from before that point are delivered, not counted lost.
        const std::uint64_t first_available =
            pending_.empty() ? seq : std::min(seq, pending_.begin()->first);
        if (first_available > *next_) {
            sink_.unrecoverable(*next_, first_available - 1);
            next_ = first_available;
        }
        flush_contiguous();
    }
    replay_progress_ = true;
    if (seq > *next_) {
        hold(std::move(batch));  // the publisher dropped replies mid-stream; ask again later
        return;
    }
    if (seq < *next_) {
        sink_.duplicate_dropped(seq);
        return;
    }
    deliver_in_order(batch);
    flush_contiguous();
}

void StreamSequencer::on_replay_end() {
    after_replay(false);
}

void StreamSequencer::on_replay_timeout() {
    after_replay(true);
}

void StreamSequencer::after_replay(bool timed_out) {
    if (!replay_in_flight_)
        return;
    if (verifying_ && !timed_out && !replay_saw_first_) {
        // The publisher holds nothing from our last delivered batch on: it has fewer batches
        // than we delivered, so it is a new incarnation.
        restart_found_by_replay();
        return;
    }
    verifying_ = false;
    replay_in_flight_ = false;
    flush_contiguous();
    if (timed_out && !replay_progress_) {
        backoff_ = true;  // the replay endpoint is not answering: stop holding live batches
        empty_replays_ = 0;
        give_up_hole();
        return;
    }
    if (replay_progress_) {
        empty_replays_ = 0;
        // Replies were cut short (the publisher's ROUTER drops past its send limit, end marker
        // included): whatever remains may still be there, even with nothing held to show a gap.
        if (timed_out || !pending_.empty()) {
            begin_replay(*next_);
            return;
        }
    } else if (!pending_.empty() && ++empty_replays_ < 2) {
        // The endpoint answered but sent nothing we need: ask once more, in case the hole was
        // published just after it served the request, before calling it lost.
        begin_replay(*next_);
        return;
    } else {
        empty_replays_ = 0;
        give_up_hole();
    }
    if (verify_pending_ && !replay_in_flight_) {
        on_reconnected();
    }
}

void StreamSequencer::give_up_hole() {
    if (pending_.empty() || !next_)
        return;
    const std::uint64_t first_held = pending_.begin()->first;
    if (first_held > *next_) {
        sink_.unrecoverable(*next_, first_held - 1);
        next_ = first_held;
    }
    flush_contiguous();
}

}  // namespace kvevents::detail

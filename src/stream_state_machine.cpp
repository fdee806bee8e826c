#include "stream_state_machine.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <string_view>
#include <utility>

namespace kvevents::detail {

const char* to_string(ReplayPurpose purpose) {
    switch (purpose) {
        case ReplayPurpose::kStartup:
            return "start-up";
        case ReplayPurpose::kGap:
            return "gap";
        case ReplayPurpose::kVerify:
            return "reconnect verification";
        case ReplayPurpose::kTailProbe:
            return "tail probe";
    }
    return "unknown";
}

namespace {

std::size_t digest(const std::string& payload) {
    return std::hash<std::string_view>{}(payload);
}

StreamConfig normalised(StreamConfig config) {
    config.max_buffered = std::max<std::size_t>(config.max_buffered, 1);
    return config;
}

}  // namespace

StreamStateMachine::StreamStateMachine(StreamActions& actions, StreamConfig config)
    : actions_(actions), config_(normalised(config)), backoff_length_(config.backoff_initial) {}

void StreamStateMachine::start(TimePoint now) {
    quiet_since_ = now;
    if (!config_.start_sequence)
        return;
    next_ = config_.start_sequence;
    if (config_.replay_available)
        begin_replay(ReplayPurpose::kStartup, now);
}

// --- inputs ----------------------------------------------------------------------------------

void StreamStateMachine::on_live(RawBatch batch, TimePoint now) {
    quiet_since_ = now;
    const std::uint64_t seq = batch.sequence;
    if (last_live_ && seq <= *last_live_) {
        // The live stream never repeats or goes back within one incarnation.
        restart_seen_live(seq);
    } else if (next_ && seq < *next_) {
        // Below what was delivered but new on the live socket: either the late live copy of a
        // batch that replay delivered first, or a new incarnation that only replay had shown.
        if (is_replayed_copy(seq, batch.payload)) {
            last_live_ = seq;
            actions_.duplicate_dropped(seq);
            return;
        }
        restart_seen_live(seq);
    }
    if (last_live_ ? seq > *last_live_ + 1 : (next_ && seq > *next_))
        actions_.gap_detected(last_live_ ? *last_live_ + 1 : *next_, seq);
    if (last_live_ && seq > *last_live_ + 1)
        probe_wanted_ = true;  // a loss just happened: the tail may go the same way
    last_live_ = seq;
    live_high_since_reconnect_ = seq;
    while (!replayed_digests_.empty() && replayed_digests_.front().first <= seq)
        replayed_digests_.pop_front();
    if (!next_)
        next_ = seq;  // no start-up replay: begin with the first live batch
    if (unproven_ && !config_.replay_available) {
        // Without replay the first batch after a reconnect is all there is to judge by: the
        // next sequence is taken as continuity, a jump cannot be told from a restart.
        unproven_ = false;
        if (seq > *next_) {
            actions_.announce_continuity_lost(seq);
            next_ = seq;
        }
    }
    note_known(seq);
    if (seq == *next_ && pending_.empty() && !unproven_) {
        deliver(batch);
        return;
    }
    hold(std::move(batch), now);
    settle(now);
}

void StreamStateMachine::on_replay_batch(std::uint64_t replay_id, RawBatch batch, TimePoint now) {
    Replaying* replay = active_replay(replay_id);
    if (replay == nullptr)
        return;  // I4: an ended request's late reply
    replay->last_reply = now;
    if (!replay->answered) {
        bool consumed = false;
        first_reply(*replay, batch, now, consumed);
        if (consumed)
            return;
        replay = active_replay(replay_id);
        if (replay == nullptr)
            return;
    }
    const std::uint64_t seq = batch.sequence;
    note_known(seq);
    if (seq < *next_) {
        actions_.duplicate_dropped(seq);
        return;
    }
    if (seq == *next_) {
        replay->advanced = true;
        deliver(batch);
        flush();
        return;
    }
    // Replies missing in between: keep this one until they are fetched again or given up.
    hold(std::move(batch), now);
}

// The first reply decides whether the publisher still holds what we followed.
void StreamStateMachine::first_reply(Replaying& replay,
                                     const RawBatch& batch,
                                     TimePoint now,
                                     bool& consumed) {
    replay.answered = true;
    backoff_length_ = config_.backoff_initial;
    const std::uint64_t seq = batch.sequence;
    if (replay.anchored) {
        consumed = seq <= anchor_->sequence;
        if (seq == anchor_->sequence) {
            if (batch.payload != anchor_->payload) {
                restart_found_by_replay(now);
                return;
            }
            unproven_ = false;  // the same bytes: the same incarnation
            flush();
            return;
        }
        if (seq < anchor_->sequence) {
            actions_.duplicate_dropped(seq);  // not what was asked for: not from this protocol
            return;
        }
        // The publisher no longer holds our last batch: it moved on by more than its buffer, or
        // it is a new incarnation. Nothing can tell which.
        const std::uint64_t first_available =
            pending_.empty() ? seq : std::min(seq, pending_.begin()->first);
        actions_.announce_continuity_lost(std::max(first_available, *next_));
        unproven_ = false;
        anchor_.reset();
        skip_to(first_available);
        flush();
        return;
    }
    if (seq > *next_) {
        // The publisher's history starts later than asked: what it no longer holds is lost,
        // except batches we hold ourselves.
        const std::uint64_t first_available =
            pending_.empty() ? seq : std::min(seq, pending_.begin()->first);
        if (first_available > *next_)
            actions_.announce_loss(*next_, first_available - 1);
        skip_to(first_available);
        flush();
    }
}

void StreamStateMachine::on_replay_end(std::uint64_t replay_id, TimePoint now) {
    Replaying* replay = active_replay(replay_id);
    if (replay == nullptr)
        return;
    const Replaying finished = *replay;
    if (!finished.answered) {
        backoff_length_ = config_.backoff_initial;
        if (finished.anchored) {
            // Nothing at or after our last delivered batch: the publisher has sent fewer batches
            // than we delivered, so it is a new incarnation.
            end_replay(ReplayOutcome::kCompleted);
            restart_found_by_replay(now);
            return;
        }
    }
    end_replay(ReplayOutcome::kCompleted);
    if (finished.purpose == ReplayPurpose::kTailProbe)
        probe_wanted_ = false;
    if (finished.advanced) {
        empty_replays_ = 0;
        settle(now);
        return;
    }
    // It answered but closed no hole. The hole may have been published just after the request
    // was served: ask once more before calling it lost.
    const bool retry = has_hole() && ++empty_replays_ < 2;
    if (!retry)
        empty_replays_ = 0;
    settle(now, retry);
}

void StreamStateMachine::on_reconnected(TimePoint now) {
    quiet_since_ = now;
    probe_wanted_ = true;
    if (!anchor_)
        return;  // nothing delivered, nothing that could be stale
    unproven_ = true;
    live_high_since_reconnect_.reset();
    if (!config_.replay_available)
        return;  // judged by the next live batch
    if (replaying())
        end_replay(ReplayOutcome::kCancelled);
    begin_replay(ReplayPurpose::kVerify, now);
}

void StreamStateMachine::on_backlog(TimePoint now) {
    quiet_since_ = now;
    probe_wanted_ = true;
}

void StreamStateMachine::on_tick(TimePoint now) {
    if (auto* replay = std::get_if<Replaying>(&phase_)) {
        if (now - replay->last_reply >= config_.replay_idle_timeout ||
            now - replay->started >= config_.replay_total_timeout) {
            const Replaying timed_out = *replay;
            end_replay(ReplayOutcome::kTimedOut);
            if (timed_out.answered && timed_out.advanced) {
                // Replies were cut short (the publisher's ROUTER drops past its send limit, end
                // marker included): what remains may still be there even with no hole known, as
                // an idle engine sends nothing that would show one.
                begin_replay(timed_out.purpose, now);
            } else {
                replay_unanswered(now);
            }
        }
    }
    if (const auto* backoff = std::get_if<BackingOff>(&phase_)) {
        if (now >= backoff->until) {
            phase_ = Live{};
            settle(now);
        }
    }
    if (!pending_.empty() && now >= hold_check_at_)
        expire_holds(now);
    if (probe_wanted_ && config_.replay_available && next_ &&
        std::holds_alternative<Live>(phase_) && config_.tail_probe_idle.count() > 0 &&
        now - quiet_since_ >= config_.tail_probe_idle) {
        begin_replay(ReplayPurpose::kTailProbe, now);
    }
}

std::optional<TimePoint> StreamStateMachine::next_deadline() const {
    std::optional<TimePoint> at;
    auto consider = [&at](TimePoint t) { at = at ? std::min(*at, t) : t; };
    if (const auto* replay = std::get_if<Replaying>(&phase_)) {
        consider(replay->last_reply + config_.replay_idle_timeout);
        consider(replay->started + config_.replay_total_timeout);
    } else if (const auto* backoff = std::get_if<BackingOff>(&phase_)) {
        consider(backoff->until);
    } else if (probe_wanted_ && config_.replay_available && next_ &&
               config_.tail_probe_idle.count() > 0) {
        consider(quiet_since_ + config_.tail_probe_idle);
    }
    if (!pending_.empty())
        consider(hold_check_at_);
    return at;
}

std::optional<TimePoint> StreamStateMachine::oldest_hold() const {
    std::optional<TimePoint> oldest;
    for (const auto& entry : pending_)
        oldest = oldest ? std::min(*oldest, entry.second.arrived) : entry.second.arrived;
    return oldest;
}

// --- the stream ------------------------------------------------------------------------------

StreamStateMachine::Replaying* StreamStateMachine::active_replay(std::uint64_t id) {
    auto* replay = std::get_if<Replaying>(&phase_);
    return replay != nullptr && replay->id == id ? replay : nullptr;
}

bool StreamStateMachine::has_hole() const {
    return next_ && known_high_ && *next_ <= *known_high_ &&
           (pending_.empty() || pending_.begin()->first > *next_ || unproven_);
}

void StreamStateMachine::note_known(std::uint64_t sequence) {
    if (!known_high_ || sequence > *known_high_)
        known_high_ = sequence;
}

bool StreamStateMachine::is_replayed_copy(std::uint64_t sequence,
                                          const std::string& payload) const {
    const auto it = std::lower_bound(
        replayed_digests_.begin(), replayed_digests_.end(), sequence,
        [](const std::pair<std::uint64_t, std::size_t>& e, std::uint64_t s) { return e.first < s; });
    return it != replayed_digests_.end() && it->first == sequence && it->second == digest(payload);
}

void StreamStateMachine::deliver(RawBatch& batch) {
    const std::uint64_t seq = batch.sequence;
    next_ = seq + 1;
    note_known(seq);
    if (batch.replayed && (!last_live_ || seq > *last_live_)) {
        replayed_digests_.emplace_back(seq, digest(batch.payload));
        if (replayed_digests_.size() > config_.max_buffered)
            replayed_digests_.pop_front();
    }
    actions_.deliver(batch);
    if (!anchor_)
        anchor_.emplace();
    anchor_->sequence = seq;
    anchor_->payload = std::move(batch.payload);
}

void StreamStateMachine::hold(RawBatch batch, TimePoint now) {
    const std::uint64_t seq = batch.sequence;
    if (pending_.count(seq) != 0) {
        actions_.duplicate_dropped(seq);
        return;
    }
    if (pending_.size() >= config_.max_buffered) {
        // Keep the oldest: they are next to deliver. The newest stay known (known_high_) and are
        // fetched again by replay.
        auto newest = std::prev(pending_.end());
        if (newest->first < seq) {
            actions_.buffer_overflow(seq);
            return;
        }
        actions_.buffer_overflow(newest->first);
        pending_.erase(newest);
    }
    const TimePoint expires = now + config_.replay_total_timeout;
    hold_check_at_ = pending_.empty() ? expires : std::min(hold_check_at_, expires);
    pending_.emplace(seq, Held{std::move(batch), now});
}

void StreamStateMachine::flush() {
    while (!pending_.empty() && !unproven_) {
        auto first = pending_.begin();
        if (first->first < *next_) {
            actions_.duplicate_dropped(first->first);
        } else if (first->first == *next_) {
            deliver(first->second.batch);
        } else {
            return;
        }
        pending_.erase(first);
    }
}

// After every input: deliver what is contiguous, then make sure every hole is being replayed or
// has been announced, so nothing waits without a timer.
void StreamStateMachine::settle(TimePoint now, bool replay_allowed) {
    flush();
    while (has_hole() && !replaying()) {
        if (replay_allowed && config_.replay_available &&
            std::holds_alternative<Live>(phase_)) {
            begin_replay(ReplayPurpose::kGap, now);
            return;
        }
        give_up_first_hole();
    }
}

void StreamStateMachine::begin_replay(ReplayPurpose purpose, TimePoint now) {
    Replaying replay;
    replay.id = ++last_replay_id_;
    replay.purpose = purpose;
    // From the last delivered batch, whose bytes prove the publisher is the one we followed; not
    // across a hole already given up, which would fetch it all again.
    replay.anchored = anchor_ && (unproven_ || anchor_->sequence + 1 == *next_);
    replay.from = replay.anchored ? anchor_->sequence : *next_;
    replay.started = replay.last_reply = now;
    phase_ = replay;
    if (!actions_.request_replay(replay.id, replay.from, purpose)) {
        end_replay(ReplayOutcome::kUnsendable);
        replay_unanswered(now);
    }
}

void StreamStateMachine::end_replay(ReplayOutcome outcome) {
    const std::uint64_t id = std::get<Replaying>(phase_).id;
    phase_ = Live{};
    actions_.replay_ended(id, outcome);
}

// The replay endpoint did not answer (or could not be asked): nothing is held for it, and for a
// while holes are announced at once.
void StreamStateMachine::replay_unanswered(TimePoint now) {
    phase_ = BackingOff{now + backoff_length_};
    backoff_length_ = std::min(backoff_length_ * 2, config_.backoff_max);
    settle(now, false);
    if (unproven_) {
        // A reconnect that could not be verified, with no hole to carry the notice.
        unproven_ = false;
        anchor_.reset();
        actions_.announce_continuity_lost(*next_);
        flush();
    }
}

void StreamStateMachine::skip_to(std::uint64_t first_available) {
    if (first_available > *next_)
        next_ = first_available;
}

void StreamStateMachine::give_up_first_hole() {
    const std::uint64_t first_kept = pending_.empty() ? *known_high_ + 1 : pending_.begin()->first;
    if (unproven_) {
        unproven_ = false;
        anchor_.reset();
        actions_.announce_continuity_lost(std::max(first_kept, *next_));
    } else if (first_kept > *next_) {
        actions_.announce_loss(*next_, first_kept - 1);
    }
    skip_to(first_kept);
    flush();
}

// I3: a batch held past its limit is delivered, with the holes before it announced; the replay
// that was meant to fill them has taken too long.
void StreamStateMachine::expire_holds(TimePoint now) {
    const TimePoint limit = now - config_.replay_total_timeout;
    std::optional<std::uint64_t> last_expired;
    for (const auto& [seq, held] : pending_) {
        if (held.arrived <= limit)
            last_expired = seq;
    }
    if (last_expired) {
        if (replaying())
            end_replay(ReplayOutcome::kAbandoned);
        while (!pending_.empty() && pending_.begin()->first <= *last_expired)
            give_up_first_hole();
        settle(now);
    }
    if (const auto oldest = oldest_hold())
        hold_check_at_ = *oldest + config_.replay_total_timeout;
}

void StreamStateMachine::forget_incarnation() {
    if (replaying())
        end_replay(ReplayOutcome::kCancelled);
    phase_ = Live{};
    backoff_length_ = config_.backoff_initial;
    empty_replays_ = 0;
    pending_.clear();
    anchor_.reset();
    replayed_digests_.clear();
    unproven_ = false;
    next_ = 0;
    known_high_.reset();
    last_live_.reset();
}

void StreamStateMachine::restart_seen_live(std::uint64_t sequence) {
    actions_.announce_restart(sequence);
    forget_incarnation();
    // The caller goes on with this batch as the new incarnation's; 0..sequence-1 are a hole.
}

void StreamStateMachine::restart_found_by_replay(TimePoint now) {
    actions_.announce_restart(0);
    // After a reconnect, live batches came from the new incarnation: they show how far it got.
    const auto live_high = unproven_ ? live_high_since_reconnect_ : std::nullopt;
    forget_incarnation();
    last_live_ = live_high;
    known_high_ = live_high;
    if (config_.replay_available) {
        begin_replay(ReplayPurpose::kStartup, now);
    } else {
        settle(now);
    }
}

}  // namespace kvevents::detail

#include "stream_state_machine.h"

#include <algorithm>
#include <cstring>
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

std::size_t digest(std::string_view payload) {
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
    // Resuming after batch S-1: the replay asks from it, so a publisher that never got that far
    // (it restarted since) shows itself by holding nothing from there on.
    if (*next_ > 0)
        anchor_ = Anchor{*next_ - 1, std::nullopt};
    history_wanted_ = config_.replay_available;
    next_delivery_decides_ = config_.replay_available;
    settle(now);
}

// --- inputs ----------------------------------------------------------------------------------

void StreamStateMachine::on_live(RawBatch batch, TimePoint now) {
    quiet_since_ = now;
    if (!live_trusted_) {
        untrusted_live(batch, now);
        return;
    }
    const std::uint64_t seq = batch.sequence;
    // The live stream never repeats or goes back within one incarnation. Below what was
    // delivered but new on the live socket is either the late live copy of a batch that replay
    // delivered first, or a new incarnation that only replay had shown.
    const bool went_back = last_live_ && seq <= *last_live_;
    if (!went_back && next_ && seq < *next_) {
        const Copy copy = compare_with_delivered(seq, batch.payload_view());
        if (copy == Copy::kSame) {
            last_live_ = seq;
            actions_.duplicate_dropped(seq);
            return;
        }
        if (copy == Copy::kUnknown && replay_usable()) {
            // Older than the digests kept (live lags far behind replay), or never delivered:
            // a replay checked against our last batch tells a late copy from a restart.
            live_trusted_ = false;
            untrusted_live(batch, now);
            return;
        }
    }
    if (went_back || (next_ && seq < *next_)) {
        restart(seq, now);
        if (!live_trusted_) {
            untrusted_live(batch, now);
            return;
        }
    }
    if (last_live_ ? seq > *last_live_ + 1 : (next_ && seq > *next_))
        actions_.gap_detected(last_live_ ? *last_live_ + 1 : *next_, seq);
    if (last_live_ && seq > *last_live_ + 1)
        probe_wanted_ = true;  // a loss just happened: the tail may go the same way
    last_live_ = seq;
    if (!next_)
        next_ = seq;  // no start-up replay: begin with the first live batch
    if (unproven_ && !config_.replay_available) {
        // Without replay the first batch after a reconnect is all there is to judge by: the
        // next sequence is taken as continuity, a jump cannot be told from a restart.
        unproven_ = false;
        if (seq > *next_) {
            lose_continuity(seq);
            next_ = seq;
        }
    }
    note_known(seq);
    if (seq == *next_ && pending_.empty() && !unproven_ && !awaits_replay(seq, 0)) {
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
    const std::uint64_t seq = batch.sequence;
    replay->last_reply = now;
    const bool first = !replay->answered();
    replay->highest_reply = std::max(replay->highest_reply.value_or(0), seq);
    if (first) {
        bool consumed = false;
        first_reply(*replay, batch, now, consumed);
        if (consumed)
            return;
        replay = active_replay(replay_id);
        if (replay == nullptr)
            return;
    }
    if (contradicts_history(batch)) {
        // What we delivered or hold has other bytes: the replay comes from another incarnation,
        // and the replay's is the publisher's now.
        restart(0, now);
        return;
    }
    note_known(seq);
    if (seq < *next_) {
        actions_.duplicate_dropped(seq);
        return;
    }
    if (seq == *next_) {
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
    endpoint_answered();
    const std::uint64_t seq = batch.sequence;
    // The last batch delivered is what ties the replay to the history we followed.
    if (replay.anchored) {
        if (seq < anchor_->sequence)
            return;  // older first: each is checked against what was delivered as it comes
        consumed = seq == anchor_->sequence;
        if (seq == anchor_->sequence) {
            if (anchor_->payload && batch.payload_view() != anchor_->payload->to_string_view()) {
                restart(0, now);
                return;
            }
            unproven_ = false;  // the same bytes: the same incarnation
            flush();
            return;
        }
        if (anchor_->payload || unproven_) {
            // The publisher no longer holds our last batch: it moved on by more than its
            // buffer, or it is a new incarnation. Nothing can tell which, so delivery goes on
            // with what it holds; batches we hold from before that point may be the old
            // incarnation's and go with the notice.
            lose_continuity(std::max(seq, *next_));
            replay.proves_bytes = false;  // held batches from elsewhere wait for its copies
            pending_.erase(pending_.begin(), pending_.lower_bound(seq));
            skip_to(seq);
            flush();
            return;
        }
        // An anchor by number only proves nothing by being absent: read as a later start.
    }
    if (seq > *next_) {
        // The publisher's history starts later than asked: what it no longer holds is lost.
        // Batches we hold from before that point are no proof of the contrary: nothing ties them
        // to this publisher's incarnation, so they go with the loss.
        actions_.announce_loss(*next_, seq - 1);
        pending_.erase(pending_.begin(), pending_.lower_bound(seq));
        skip_to(seq);
        flush();
    }
}

void StreamStateMachine::on_replay_end(std::uint64_t replay_id, TimePoint now) {
    Replaying* replay = active_replay(replay_id);
    if (replay == nullptr)
        return;
    const Replaying finished = *replay;
    endpoint_answered();
    end_replay(ReplayOutcome::kCompleted);
    if (finished.anchored && (!finished.highest_reply || *finished.highest_reply < finished.from)) {
        // Nothing at or after our last delivered batch: the publisher has sent fewer batches
        // than we delivered, so it is a new incarnation.
        restart(0, now);
        return;
    }
    // A batch held before the request was sent had been published by then, so a complete replay
    // of the same incarnation includes it: one that ended below it is another incarnation's.
    if (held_beyond(finished, [&](const Held& h) { return h.order < finished.order; })) {
        restart(0, now);
        return;
    }
    if (!finished.proves_bytes &&
        held_beyond(finished, [&](const Held& h) { return h.replay_id != finished.id; })) {
        // Held batches this replay neither reached nor tied to its incarnation (they arrived
        // after it was asked for): one more, asked now, reaches them or shows they are another
        // incarnation's.
        begin_replay(ReplayPurpose::kStartup, now);
        return;
    }
    if (finished.advanced(*next_)) {
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
    if (!anchor_ || !anchor_->payload) {
        // Nothing delivered (since the start or the last notice: an anchor by number only), so
        // nothing the handler holds can be stale. But batches held from
        // the old connection, and a history replay asked for before, may be another
        // incarnation's than what follows: the history is asked for again.
        if (config_.replay_available && (replaying() || !pending_.empty())) {
            pending_.clear();
            if (replaying())
                end_replay(ReplayOutcome::kCancelled);
            history_wanted_ = true;
            next_delivery_decides_ = true;
            settle(now);
        }
        return;
    }
    unproven_ = true;
    reconnect_order_ = ++order_;
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
    if (auto* replay = std::get_if<Replaying>(&phase_);
        replay != nullptr && !replay->waiting_turn) {
        if (now - replay->last_reply >= config_.replay_idle_timeout ||
            now - replay->started >= config_.replay_total_timeout) {
            const Replaying timed_out = *replay;
            end_replay(ReplayOutcome::kTimedOut);
            empty_replays_ = 0;
            // It proved its anchor, then was cut short re-sending only batches we have: the
            // anchor is older than a range given up, and asking from it again would be cut at
            // the same place.
            const bool stale_anchor = timed_out.anchored && timed_out.from + 1 < *next_;
            const bool advanced = timed_out.advanced(*next_);
            if (timed_out.answered() && (advanced || stale_anchor)) {
                // Replies were cut short (the publisher's ROUTER drops past its send limit, end
                // marker included): what remains may still be there even with no hole known, as
                // an idle engine sends nothing that would show one. Asking from the old anchor
                // again would be cut at the same place: ask from `next`.
                begin_replay(timed_out.purpose, now, !advanced);
            } else {
                back_off(now, timed_out.answered());
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
    auto consider = [&at](TimePoint t) { at = earliest(at, t); };
    if (const auto* replay = std::get_if<Replaying>(&phase_)) {
        if (!replay->waiting_turn) {
            consider(replay->last_reply + config_.replay_idle_timeout);
            consider(replay->started + config_.replay_total_timeout);
        }
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
    for (const auto& entry : pending_) oldest = earliest(oldest, entry.second.arrived);
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

StreamStateMachine::Copy StreamStateMachine::compare_with_delivered(
    std::uint64_t sequence, std::string_view payload) const {
    const auto it = std::lower_bound(recent_digests_.begin(), recent_digests_.end(), sequence,
                                     [](const std::pair<std::uint64_t, std::size_t>& e,
                                        std::uint64_t s) { return e.first < s; });
    if (it == recent_digests_.end() || it->first != sequence)
        return Copy::kUnknown;
    return it->second == digest(payload) ? Copy::kSame : Copy::kDifferent;
}

bool StreamStateMachine::contradicts_history(const RawBatch& reply) const {
    const std::uint64_t seq = reply.sequence;
    if (anchor_ && anchor_->payload && anchor_->sequence == seq)
        return anchor_->payload->to_string_view() != reply.payload_view();
    if (compare_with_delivered(seq, reply.payload_view()) == Copy::kDifferent)
        return true;
    const auto it = pending_.find(seq);
    return it != pending_.end() && it->second.batch.payload_view() != reply.payload_view();
}

// Whether a batch held beyond `finished`'s last reply satisfies `held_from`.
template <class Predicate>
bool StreamStateMachine::held_beyond(const Replaying& finished, Predicate held_from) const {
    // Newest first. NOLINTNEXTLINE(modernize-loop-convert): a reverse loop needs <ranges>
    for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
        if (finished.highest_reply && it->first <= *finished.highest_reply)
            return false;
        if (held_from(it->second))
            return true;
    }
    return false;
}

// A live batch matching its replayed copy shows
// the live stream has reached the new incarnation. Any other is set aside: one of the old
// incarnation is covered by the restart notice, and one of the new is fetched by replay.
void StreamStateMachine::untrusted_live(const RawBatch& batch, TimePoint now) {
    const Copy copy = compare_with_delivered(batch.sequence, batch.payload_view());
    if (copy == Copy::kSame) {
        live_trusted_ = true;
        set_aside_.reset();
        last_live_ = batch.sequence;
        actions_.duplicate_dropped(batch.sequence);
        return;
    }
    actions_.duplicate_dropped(batch.sequence);
    set_aside_.emplace(batch.sequence, digest(batch.payload_view()));
    probe_wanted_ = true;  // if replay fails, the tail is checked later
    // What the publisher has now, checked against our history: a running replay may have been
    // served before this batch was published, so another follows it.
    history_wanted_ = true;
    settle(now);
}

void StreamStateMachine::deliver(RawBatch& batch) {
    const std::uint64_t seq = batch.sequence;
    next_ = seq + 1;
    note_known(seq);
    if (next_delivery_decides_) {
        next_delivery_decides_ = false;
        if (batch.replayed)
            untie_live();
    }
    if (batch.replayed && set_aside_ && set_aside_->first == seq) {
        if (set_aside_->second == digest(batch.payload_view())) {
            // The newest live batch set aside is this one: the live stream is on this history,
            // and the replay has fetched everything set aside.
            live_trusted_ = true;
            history_wanted_ = false;
            last_live_ = seq;
        } else {
            // Live and replay disagree: one of them is a stale incarnation. A new replay, checked
            // against this batch, tells which.
            history_wanted_ = true;
        }
        set_aside_.reset();
    }
    // Kept for batches a replay may send again: ones delivered from replay (their live copies
    // may follow) and ones delivered while a replay runs.
    if ((batch.replayed && (!last_live_ || seq > *last_live_)) || replaying()) {
        recent_digests_.emplace_back(seq, digest(batch.payload_view()));
        if (recent_digests_.size() > config_.max_buffered)
            recent_digests_.pop_front();
    }
    actions_.deliver(batch);
    if (!anchor_)
        anchor_.emplace();
    anchor_->sequence = seq;
    // Copied, not kept: a received frame may pin libzmq's whole 8 KiB receive buffer, and a
    // thousand publishers' anchors would hold megabytes of them. Same-sized payloads reuse it.
    const std::string_view bytes = batch.payload_view();
    if (!anchor_->payload || anchor_->payload->size() != bytes.size())
        anchor_->payload.emplace(bytes.size());
    if (!bytes.empty())
        std::memcpy(anchor_->payload->data(), bytes.data(), bytes.size());
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
    const auto* replay = std::get_if<Replaying>(&phase_);
    const std::uint64_t source = batch.replayed && replay != nullptr ? replay->id : 0;
    // A received frame may share libzmq's 8 KiB receive buffer with its neighbours and keep all
    // of it alive; a held one is copied to its own size, so the hold bound counts real bytes.
    batch.topic = zmq::message_t(batch.topic_view());
    batch.payload = zmq::message_t(batch.payload_view());
    pending_.emplace(seq, Held{std::move(batch), now, ++order_, source});
}

void StreamStateMachine::flush() {
    while (!pending_.empty() && !unproven_) {
        auto first = pending_.begin();
        if (first->first < *next_) {
            actions_.duplicate_dropped(first->first);
        } else if (first->first == *next_ &&
                   !awaits_replay(first->first, first->second.replay_id)) {
            deliver(first->second.batch);
        } else {
            return;
        }
        pending_.erase(first);
    }
}

// While a replay runs that does not prove its incarnation by bytes (no anchor, or one by number),
// a held batch it has not reached yet waits for it unless it came from that very replay: if the
// publisher restarted, the replay comes from the new incarnation and the held batch (live, or
// from an earlier replay) may be the old one's; the replay's copy shows which. Its end (or the
// hold limit) releases the rest. A replay anchored by bytes proves its incarnation by its first
// reply, and trusted live batches are the same incarnation's, so nothing waits for it.
bool StreamStateMachine::awaits_replay(std::uint64_t sequence, std::uint64_t source_replay) const {
    const auto* replay = std::get_if<Replaying>(&phase_);
    return replay != nullptr && !replay->proves_bytes && source_replay != replay->id &&
           (!replay->highest_reply || sequence > *replay->highest_reply);
}

// After every input: deliver what is contiguous, then make sure every hole is being replayed or
// has been announced, so nothing waits without a timer.
// A start-up replay that failed is asked again once the backoff is over: there is no hole to
// announce, as nothing shows how much history there is.
void StreamStateMachine::settle(TimePoint now, bool replay_allowed) {
    flush();
    while (!replaying()) {
        const bool hole = has_hole();
        if (!hole && !history_wanted_)
            return;
        const bool can_replay = config_.replay_available && std::holds_alternative<Live>(phase_);
        if (can_replay && (history_wanted_ || replay_allowed)) {
            begin_replay(history_wanted_ ? ReplayPurpose::kStartup : ReplayPurpose::kGap, now);
            return;
        }
        if (!hole)
            return;
        give_up_first_hole(!config_.replay_available || replay_answering_);
    }
}

void StreamStateMachine::begin_replay(ReplayPurpose purpose, TimePoint now, bool from_next) {
    Replaying replay;
    replay.id = ++last_replay_id_;
    replay.purpose = purpose;
    // From the last delivered batch, whose bytes prove the publisher is the one we followed.
    replay.anchored = anchor_.has_value() && !from_next;
    replay.proves_bytes = replay.anchored && anchor_->payload.has_value();
    replay.from = replay.anchored ? anchor_->sequence : *next_;
    replay.next_at_request = *next_;
    replay.started = replay.last_reply = now;
    replay.order = ++order_;
    // Wanted again if this one fails, or if what shows the need happens again meanwhile.
    if (purpose == ReplayPurpose::kStartup)
        history_wanted_ = false;
    if (purpose == ReplayPurpose::kTailProbe)
        probe_wanted_ = false;
    phase_ = replay;
    switch (actions_.request_replay(replay.id, replay.from, purpose)) {
        case ReplaySend::kSent:
            break;
        case ReplaySend::kWaiting:
            std::get<Replaying>(phase_).waiting_turn = true;
            break;
        case ReplaySend::kUnsendable:
            end_replay(ReplayOutcome::kUnsendable);
            back_off(now, false);
            break;
    }
}

void StreamStateMachine::on_replay_sent(std::uint64_t replay_id, TimePoint now) {
    Replaying* replay = active_replay(replay_id);
    if (replay == nullptr || !replay->waiting_turn)
        return;
    replay->waiting_turn = false;
    replay->started = replay->last_reply = now;
}

void StreamStateMachine::end_replay(ReplayOutcome outcome) {
    const Replaying& replay = std::get<Replaying>(phase_);
    const std::uint64_t id = replay.id;
    const bool failed =
        outcome != ReplayOutcome::kCompleted && outcome != ReplayOutcome::kCancelled;
    if (failed && replay.purpose == ReplayPurpose::kStartup)
        history_wanted_ = true;
    if (failed && replay.purpose == ReplayPurpose::kTailProbe)
        probe_wanted_ = true;
    phase_ = Live{};
    actions_.replay_ended(id, outcome);
}

void StreamStateMachine::endpoint_answered() {
    replay_answering_ = true;
    backoff_length_ = config_.backoff_initial;
}

// The replay endpoint did not finish a replay (or could not be asked): nothing is held for it,
// and for a while holes are announced at once. When it did not answer at all, those holes may
// hide a restart.
void StreamStateMachine::back_off(TimePoint now, bool it_answered) {
    phase_ = BackingOff{now + backoff_length_};
    backoff_length_ = std::min(backoff_length_ * 2, config_.backoff_max);
    replay_answering_ = it_answered;
    if (!live_trusted_) {
        // Live batches waited for replay to vouch for them. Without it they are taken as they
        // come, after a notice: they might be another incarnation's. Those set aside are
        // counted in the hole the notice covers.
        live_trusted_ = true;
        if (set_aside_)
            note_known(set_aside_->first);
        set_aside_.reset();
        unproven_ = true;
    }
    settle(now);
    if (unproven_) {
        // Continuity that could not be proven, with no hole to carry the notice.
        drop_held_before_reconnect();
        lose_continuity(*next_);
        flush();
    }
}

// The handler forgets the pod; what we kept of the history before may be another incarnation's
// and vouches for nothing after this, the live stream's position included (with replay, a live
// batch below what is delivered next is checked by a replay rather than taken as a restart).
void StreamStateMachine::lose_continuity(std::uint64_t next_sequence) {
    actions_.announce_continuity_lost(next_sequence);
    forget_history();
    next_delivery_decides_ = config_.replay_available;
    // Replays are asked from here on by number, as for a saved start position: a publisher
    // holding nothing that far is one that restarted.
    if (next_sequence > 0)
        anchor_ = Anchor{next_sequence - 1, std::nullopt};
    if (config_.replay_available)
        last_live_.reset();
}

// A reconnect that could not be verified: batches held from the old connection belong to the
// history the notice tells the handler to forget, not to what follows it.
void StreamStateMachine::drop_held_before_reconnect() {
    for (auto it = pending_.begin(); it != pending_.end();)
        it = it->second.order < reconnect_order_ ? pending_.erase(it) : std::next(it);
}

// What ties later replies and live batches to the history delivered so far.
void StreamStateMachine::forget_history() {
    unproven_ = false;
    anchor_.reset();
    recent_digests_.clear();
    set_aside_.reset();
}

// Past a range given up, the anchor stays the last delivered batch: its bytes are the proof.
// (A replay from it that only re-sends the range is asked again from `next`; see on_tick.)
void StreamStateMachine::skip_to(std::uint64_t first_available) {
    if (first_available > *next_)
        next_ = first_available;
}

// `provable`: a replay answered, so the hole is a loss in the incarnation we follow. Otherwise
// the batches after it may be another incarnation's: continuity is lost.
void StreamStateMachine::give_up_first_hole(bool provable) {
    if (unproven_)
        drop_held_before_reconnect();
    const std::uint64_t first_kept = pending_.empty() ? *known_high_ + 1 : pending_.begin()->first;
    if (unproven_ || !provable) {
        lose_continuity(std::max(first_kept, *next_));
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
        // The replay never vouched for these live batches: they may be another incarnation's.
        while (!pending_.empty() && pending_.begin()->first <= *last_expired)
            give_up_first_hole(false);
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
    forget_history();
    history_wanted_ = false;
    live_trusted_ = true;
    next_delivery_decides_ = false;
    next_ = 0;
    known_high_.reset();
    last_live_.reset();
}

// The history now comes from a replay the live stream is not known to share: held live batches
// become hints like any later ones (the replay fetches them if they are its incarnation's).
void StreamStateMachine::untie_live() {
    live_trusted_ = false;
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.batch.replayed) {
            ++it;
            continue;
        }
        set_aside_.emplace(it->first, digest(it->second.batch.payload_view()));
        it = pending_.erase(it);
    }
    if (set_aside_)
        history_wanted_ = true;
}

// With replay, the new incarnation's history is fetched from 0, and live batches are checked
// against it: ones still queued from the old incarnation must not pass for the new one's.
// Without replay the caller goes on with the revealing batch; 0..revealed_by-1 are a hole.
void StreamStateMachine::restart(std::uint64_t revealed_by, TimePoint now) {
    actions_.announce_restart(revealed_by);
    // A live batch set aside is the newest the live stream showed: if the new incarnation's
    // replay has the same bytes, the live stream is on it.
    const auto set_aside = set_aside_;
    forget_incarnation();
    if (!config_.replay_available)
        return;
    set_aside_ = set_aside;
    live_trusted_ = false;
    history_wanted_ = true;
    settle(now);
}

}  // namespace kvevents::detail

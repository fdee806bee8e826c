#include "stream_model.h"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "stream_state_machine.h"

namespace kvevents::model {
namespace {

using detail::RawBatch;
using detail::ReplayOutcome;
using detail::ReplayPurpose;
using detail::ReplaySend;
using detail::StreamStateMachine;
using detail::TimePoint;
using std::chrono::milliseconds;

// A payload names its incarnation and sequence, so the oracle knows what was really delivered.
std::string payload_of(int incarnation, std::uint64_t seq) {
    return "i" + std::to_string(incarnation) + "s" + std::to_string(seq);
}

std::pair<int, std::uint64_t> identity_of(const std::string& payload) {
    const auto s = payload.find('s');
    return {std::stoi(payload.substr(1, s - 1)), std::stoull(payload.substr(s + 1))};
}

bool tracing_on = false;

bool tracing() {
    return tracing_on;
}

void trace(const std::string& line) {
    if (tracing())
        std::cerr << line << "\n";
}

struct Reply {
    std::uint64_t id;
    bool end;
    std::uint64_t seq;
    std::string payload;
};

// The oracle: the handler's view, checked as every action arrives. An epoch is the stretch
// between two notices that reset the handler's picture (restart, continuity lost).
class Oracle final : public detail::StreamActions {
public:
    Oracle(const ModelConfig& config, int saved_incarnation)
        : config_(config), epoch_incarnation_(saved_incarnation) {
        if (config.start_sequence && *config.start_sequence > 0) {
            epoch_last_ = *config.start_sequence - 1;  // delivered in an earlier life
        }
        coverage_from_ = config.start_sequence;
    }

    // The simulator's knowledge, read by the checks.
    int publisher_incarnation = 0;
    std::uint64_t actions = 0;  // every call counts: stale replies must cause none
    std::optional<std::uint64_t> current_replay;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> requests;        // id, from
    std::optional<std::pair<std::uint64_t, std::uint64_t>> waiting_turn;  // id, from
    std::string failure;
    RunResult totals;

    void deliver(RawBatch& batch) override {
        trace("    deliver " + batch.payload.to_string() + (batch.replayed ? " (replay)" : ""));
        ++actions;
        ++totals.delivered;
        const auto [incarnation, seq] = identity_of(batch.payload.to_string());
        if (seq != batch.sequence)
            fail("delivered sequence " + std::to_string(batch.sequence) + " carries batch " +
                 std::to_string(seq));
        // After "continuity lost" the machine takes what comes, which may be replies an older
        // incarnation sent before it died; the live stream then shows the newer one (checked
        // when the run settles).
        if (incarnation < epoch_incarnation_ && !(reset_pending_ && continuity_reset_))
            fail("delivered i" + std::to_string(incarnation) + "s" + std::to_string(seq) +
                 " after incarnation " + std::to_string(epoch_incarnation_));
        if (incarnation != epoch_incarnation_ && epoch_delivered_ && !reset_pending_)
            unannounced_restart(incarnation,
                                "I2: delivered i" + std::to_string(incarnation) + "s" +
                                    std::to_string(seq) + " as a continuation of incarnation " +
                                    std::to_string(epoch_incarnation_) + " with no restart notice");
        if (incarnation != epoch_incarnation_ && !epoch_delivered_ && !reset_pending_ &&
            epoch_last_ && seq <= *epoch_last_)
            unannounced_restart(incarnation,
                                "I2: the first delivery i" + std::to_string(incarnation) + "s" +
                                    std::to_string(seq) +
                                    " follows a start position from incarnation " +
                                    std::to_string(epoch_incarnation_) + " with no restart notice");
        if (incarnation != epoch_incarnation_ && !reset_pending_ && invisible(incarnation) &&
            (epoch_delivered_ || epoch_last_)) {
            // Followed as a continuation: check the rest in the new incarnation's numbering.
            const auto followed_up_to = epoch_last_;
            begin_epoch(incarnation);
            coverage_from_ = followed_up_to ? *followed_up_to + 1 : seq;
        }
        if (reset_pending_)
            begin_epoch(incarnation);
        if (delivered_.count({incarnation, seq}) != 0)
            fail("I1: i" + std::to_string(incarnation) + "s" + std::to_string(seq) +
                 " delivered twice in one epoch");
        const std::uint64_t expected =
            epoch_last_ ? *epoch_last_ + 1 : coverage_from_.value_or(seq);
        if (epoch_last_ && seq <= *epoch_last_)
            fail("I1: s" + std::to_string(seq) + " delivered after s" +
                 std::to_string(*epoch_last_));
        for (std::uint64_t s = expected; s < seq && failure.empty(); ++s) {
            if (!covered_by_loss(s))
                fail("I1: s" + std::to_string(s) + " of incarnation " +
                     std::to_string(incarnation) + " skipped silently before s" +
                     std::to_string(seq));
        }
        delivered_.insert({incarnation, seq});
        if (!epoch_first_)
            epoch_first_ = seq;
        epoch_incarnation_ = incarnation;
        epoch_last_ = seq;
        epoch_delivered_ = true;
    }
    void announce_restart(std::uint64_t seq) override {
        trace("    restart " + std::to_string(seq));
        ++actions;
        ++totals.restarts;
        // A restart notice without a restart makes the gateway forget a healthy pod's blocks:
        // safe, but costly. The machine falls back on it only where it cannot tell (a live
        // batch below what it delivered while the replay endpoint is not answering); the test
        // bounds how often.
        if (epoch_delivered_ && epoch_incarnation_ == publisher_incarnation &&
            restarts_seen_at_epoch_start_ == restarts_model_)
            ++totals.false_restarts;
        reset(0, false);
    }
    void announce_continuity_lost(std::uint64_t next) override {
        trace("    continuity lost, next " + std::to_string(next));
        ++actions;
        ++totals.continuity_lost;
        reset(next, true);
    }
    void announce_loss(std::uint64_t first, std::uint64_t last) override {
        trace("    lost " + std::to_string(first) + "-" + std::to_string(last));
        ++actions;
        ++totals.losses;
        if (last < first)
            fail("loss range " + std::to_string(first) + "-" + std::to_string(last));
        if (epoch_last_ && first <= *epoch_last_ && !reset_pending_)
            fail("loss " + std::to_string(first) + "-" + std::to_string(last) +
                 " overlaps what was delivered up to s" + std::to_string(*epoch_last_));
        losses_.emplace_back(first, last);
    }
    ReplaySend request_replay(std::uint64_t id,
                              std::uint64_t from,
                              ReplayPurpose purpose) override {
        trace("    request #" + std::to_string(id) + " " + detail::to_string(purpose) + " from " +
              std::to_string(from));
        ++actions;
        if (current_replay)
            fail("a replay was requested while replay " + std::to_string(*current_replay) +
                 " was still running");
        if (!config_.replay_available)
            fail("a replay was requested with no replay endpoint");
        current_replay = id;
        if (config_.replay_turns) {
            waiting_turn.emplace(id, from);
            return ReplaySend::kWaiting;
        }
        requests.emplace_back(id, from);
        return ReplaySend::kSent;
    }
    void replay_ended(std::uint64_t id, ReplayOutcome outcome) override {
        trace("    ended #" + std::to_string(id) + " outcome " +
              std::to_string(static_cast<int>(outcome)));
        ++actions;
        if (current_replay != id)
            fail("replay " + std::to_string(id) + " ended but was not running");
        current_replay.reset();
        if (waiting_turn && waiting_turn->first == id)
            waiting_turn.reset();
    }
    void duplicate_dropped(std::uint64_t seq) override {
        trace("    dup " + std::to_string(seq));
        ++actions;
    }
    void buffer_overflow(std::uint64_t) override { ++actions; }
    void gap_detected(std::uint64_t, std::uint64_t) override { ++actions; }

    void model_restarted() { ++restarts_model_; }

    // After settling: everything the current incarnation published from where this epoch's
    // coverage starts is delivered or announced lost.
    void check_complete(std::uint64_t published, const std::set<std::uint64_t>& skipped) {
        if (published == skipped.size() || !failure.empty())
            return;  // nothing of this incarnation was ever sent: a quiet restart is invisible
        if (reset_pending_)
            begin_epoch(publisher_incarnation);  // told to forget; nothing delivered since
        if (!coverage_from_ && !epoch_first_)
            return;  // live only, and nothing ever arrived: nothing was followed
        if (epoch_incarnation_ != publisher_incarnation && invisible(publisher_incarnation)) {
            ++totals.undetectable_restarts;
            return;
        }
        // A saved start position S from an earlier incarnation, and a new one that has since
        // published batch S-1: by number (all a saved position has) it is the same publisher.
        if (epoch_incarnation_ == -1 && !epoch_delivered_ &&
            published >= coverage_from_.value_or(0)) {
            ++totals.undetectable_restarts;
            return;
        }
        if (epoch_incarnation_ != publisher_incarnation) {
            fail("after settling, the handler follows incarnation " +
                 std::to_string(epoch_incarnation_) + " but the publisher is incarnation " +
                 std::to_string(publisher_incarnation) + " with " + std::to_string(published) +
                 " batches");
            return;
        }
        const std::uint64_t from = coverage_from_.value_or(epoch_first_.value_or(0));
        for (std::uint64_t s = from; s < published && failure.empty(); ++s) {
            if (skipped.count(s) == 0 && delivered_.count({epoch_incarnation_, s}) == 0 &&
                !covered_by_loss(s))
                fail("after settling, s" + std::to_string(s) + " of incarnation " +
                     std::to_string(epoch_incarnation_) + " (of " + std::to_string(published) +
                     " published) was neither delivered nor announced lost");
        }
    }

    // An incarnation whose restart nobody could see: with replay off (documented), or one that
    // began on an unbroken connection with its first batch dropped by a full queue, so that its
    // sequence may continue the old one's.
    void restart_invisible(int incarnation) { invisible_.insert(incarnation); }
    bool invisible(int incarnation) const {
        return !config_.replay_available || invisible_.count(incarnation) != 0;
    }

    void unannounced_restart(int incarnation, const std::string& what) {
        if (!invisible(incarnation)) {
            fail(what);
        } else {
            ++totals.undetectable_restarts;
        }
    }

    void fail(const std::string& what) {
        if (failure.empty())
            failure = what;
    }

private:
    void reset(std::uint64_t coverage_from, bool continuity) {
        reset_pending_ = true;
        continuity_reset_ = continuity;
        pending_coverage_from_ = coverage_from;
        losses_.clear();
    }

    void begin_epoch(int incarnation) {
        reset_pending_ = false;
        epoch_incarnation_ = incarnation;
        epoch_last_.reset();
        epoch_first_.reset();
        epoch_delivered_ = false;
        coverage_from_ = pending_coverage_from_;
        delivered_.clear();
        restarts_seen_at_epoch_start_ = restarts_model_;
        // Losses announced after the reset belong to the new epoch: keep them.
    }

    bool covered_by_loss(std::uint64_t seq) const {
        return std::any_of(losses_.begin(), losses_.end(),
                           [seq](const auto& r) { return r.first <= seq && seq <= r.second; });
    }

    const ModelConfig& config_;
    int epoch_incarnation_;
    std::optional<std::uint64_t> epoch_last_;
    std::optional<std::uint64_t> epoch_first_;
    std::optional<std::uint64_t> coverage_from_;
    std::optional<std::uint64_t> pending_coverage_from_;
    bool epoch_delivered_ = false;
    bool reset_pending_ = false;
    bool continuity_reset_ = false;
    std::set<int> invisible_;
    std::set<std::pair<int, std::uint64_t>> delivered_;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> losses_;
    std::size_t restarts_model_ = 0;
    std::size_t restarts_seen_at_epoch_start_ = 0;
};

class Simulator {
public:
    explicit Simulator(const ModelConfig& config)
        : config_(config),
          oracle_(config, saved_incarnation(config)),
          machine_(oracle_, stream_config(config)) {
        for (std::uint32_t i = 0; i < config.published_before_start; ++i) publish_one(false);
        machine_.start(now_);
        check("start");
    }

    bool step(const Op& op) {
        trace(describe(op) + "  [t=" +
              std::to_string(
                  std::chrono::duration_cast<milliseconds>(now_.time_since_epoch()).count() %
                  100000) +
              " inc=" + std::to_string(incarnation_) + " next_seq=" + std::to_string(next_seq_) +
              "]");
        switch (op.kind) {
            case OpKind::kPublish:
                for (std::uint32_t i = 0; i < op.arg; ++i) publish_one(connected_);
                break;
            case OpKind::kSkip:
                // Never before an incarnation's first batch: a restart on the same socket whose
                // first numbers vanish upstream looks exactly like a continuation, to anyone.
                if (next_seq_ > skipped_.size())
                    skipped_.insert(next_seq_++);
                break;
            case OpKind::kDeliverLive:
                deliver_live(op.arg);
                break;
            case OpKind::kServeReplay:
                serve_replay();
                break;
            case OpKind::kDeliverReplay:
                deliver_replies(op.arg);
                break;
            case OpKind::kTick:
                tick(milliseconds(op.arg));
                break;
            case OpKind::kTickToDeadline:
                if (const auto deadline = machine_.next_deadline())
                    tick(std::max(milliseconds(0),
                                  std::chrono::duration_cast<milliseconds>(*deadline - now_)));
                break;
            case OpKind::kRestart:
                fresh_incarnation_ = true;
                ++incarnation_;
                oracle_.publisher_incarnation = incarnation_;
                oracle_.model_restarted();
                next_seq_ = 0;
                buffer_.clear();
                skipped_.clear();
                break;
            case OpKind::kDisconnect:
                connected_ = false;
                live_queue_.clear();
                break;
            case OpKind::kReconnect:
                if (!connected_) {
                    connected_ = true;
                    machine_.on_reconnected(now_);
                }
                break;
            case OpKind::kReplayDown:
                replay_up_ = false;
                unserved_.clear();
                replies_.clear();
                break;
            case OpKind::kReplayUp:
                replay_up_ = true;
                break;
            case OpKind::kGrantTurn:
                if (const auto waiting = oracle_.waiting_turn) {
                    oracle_.waiting_turn.reset();
                    oracle_.requests.push_back(*waiting);
                    machine_.on_replay_sent(waiting->first, now_);
                }
                break;
        }
        return check(describe(op));
    }

    // No more faults: the network heals and time runs until nothing is pending. Without the tail
    // probe a lost tail shows only when another batch arrives, so one more is published.
    void settle() {
        step({OpKind::kReplayUp});
        step({OpKind::kReconnect});
        if (config_.tail_probe_idle_ms == 0 || !config_.replay_available) {
            step({OpKind::kDeliverLive, 1000});
            step({OpKind::kPublish, 1});
        }
        for (int round = 0; round < 10000 && ok(); ++round) {
            if (!live_queue_.empty()) {
                step({OpKind::kDeliverLive, 1000});
            } else if (oracle_.waiting_turn) {
                step({OpKind::kGrantTurn});
            } else if (!unserved_.empty()) {
                step({OpKind::kServeReplay});
            } else if (!replies_.empty()) {
                step({OpKind::kDeliverReplay, 1000});
            } else if (machine_.next_deadline()) {
                step({OpKind::kTickToDeadline});
            } else {
                // What readiness (kReady) waits for must come once the faults are over.
                if (!machine_.history_settled())
                    oracle_.fail("after settling, the start-up history is still unsettled");
                oracle_.check_complete(next_seq_, skipped_);
                return;
            }
        }
        if (ok())
            oracle_.fail("the stream never settled");
    }

    bool ok() const { return oracle_.failure.empty(); }
    RunResult result(std::size_t steps) const {
        RunResult r = oracle_.totals;
        r.ok = ok();
        r.failure = oracle_.failure;
        r.steps = steps;
        return r;
    }

private:
    static int saved_incarnation(const ModelConfig& config) {
        // A start position ahead of the publisher was saved from an earlier incarnation.
        return config.start_sequence && *config.start_sequence > config.published_before_start ? -1
                                                                                               : 0;
    }

    static detail::StreamConfig stream_config(const ModelConfig& c) {
        detail::StreamConfig s;
        s.replay_available = c.replay_available;
        s.start_sequence = c.start_sequence;
        s.max_buffered = c.max_buffered;
        s.replay_idle_timeout = milliseconds(c.idle_timeout_ms);
        s.replay_total_timeout = milliseconds(c.total_timeout_ms);
        s.backoff_initial = milliseconds(c.backoff_initial_ms);
        s.backoff_max = milliseconds(c.backoff_max_ms);
        s.tail_probe_idle = milliseconds(c.tail_probe_idle_ms);
        return s;
    }

    void publish_one(bool send) {
        if (fresh_incarnation_ && send && live_queue_.size() >= config_.live_capacity)
            oracle_.restart_invisible(incarnation_);
        fresh_incarnation_ = false;
        const std::uint64_t seq = next_seq_++;
        std::string payload = payload_of(incarnation_, seq);
        buffer_.emplace_back(seq, payload);
        if (buffer_.size() > config_.buffer_steps)
            buffer_.pop_front();
        if (send && live_queue_.size() < config_.live_capacity)
            live_queue_.emplace_back(seq, std::move(payload));
    }

    void deliver_live(std::uint32_t n) {
        if (live_queue_.empty())
            return;
        // A queue this deep may have dropped: the shell sees a full drain.
        if (live_queue_.size() >= config_.live_capacity / 2 + 1)
            machine_.on_backlog(now_);
        for (std::uint32_t i = 0; i < n && !live_queue_.empty() && ok(); ++i) {
            auto [seq, payload] = std::move(live_queue_.front());
            live_queue_.pop_front();
            trace("  live " + payload);
            machine_.on_live(RawBatch{seq, "", std::move(payload), false}, now_);
            check_invariants("live s" + std::to_string(seq));
        }
    }

    // The machine's requests reach the ROUTER in order; those made while it is down are gone.
    void collect_requests() {
        while (requests_seen_ < oracle_.requests.size()) {
            if (replay_up_)
                unserved_.push_back(oracle_.requests[requests_seen_]);
            ++requests_seen_;
        }
    }

    void serve_replay() {
        if (unserved_.empty() || !replay_up_)
            return;
        const auto [id, from] = unserved_.front();
        unserved_.pop_front();
        std::uint32_t sent = 0;
        for (const auto& [seq, payload] : buffer_) {
            if (seq < from)
                continue;
            if (config_.router_bound != 0 && sent >= config_.router_bound)
                return;  // dropped past the send limit, end marker included
            replies_.push_back(Reply{id, false, seq, payload});
            ++sent;
        }
        if (config_.router_bound == 0 || sent < config_.router_bound)
            replies_.push_back(Reply{id, true, 0, {}});
    }

    void deliver_replies(std::uint32_t n) {
        for (std::uint32_t i = 0; i < n && !replies_.empty() && ok(); ++i) {
            Reply reply = std::move(replies_.front());
            replies_.pop_front();
            const bool stale = oracle_.current_replay != reply.id;
            trace("  reply #" + std::to_string(reply.id) + " " +
                  (reply.end ? std::string("end") : reply.payload));
            const std::uint64_t before = oracle_.actions;
            if (reply.end) {
                machine_.on_replay_end(reply.id, now_);
            } else {
                machine_.on_replay_batch(
                    reply.id, RawBatch{reply.seq, "", std::move(reply.payload), true}, now_);
            }
            if (stale && oracle_.actions != before)
                oracle_.fail("I4: a reply to ended replay " + std::to_string(reply.id) +
                             " caused an action");
            check_invariants("reply");
        }
    }

    void tick(milliseconds dt) {
        // Never past a deadline: the shell polls with the machine's next deadline as timeout.
        if (const auto deadline = machine_.next_deadline()) {
            if (*deadline > now_)
                dt = std::min(dt, std::chrono::duration_cast<milliseconds>(*deadline - now_) +
                                      milliseconds(1));
            else
                dt = milliseconds(0);
        }
        now_ += dt;
        machine_.on_tick(now_);
    }

    bool check(const std::string& what) {
        check_invariants(what);
        return ok();
    }

    void check_invariants(const std::string& what) {
        collect_requests();
        if (!ok())
            return;
        if (machine_.held() > config_.max_buffered ||
            machine_.digests_kept() > config_.max_buffered)
            oracle_.fail("I5: " + std::to_string(machine_.held()) + " held, " +
                         std::to_string(machine_.digests_kept()) + " digests, bound " +
                         std::to_string(config_.max_buffered));
        if (const auto oldest = machine_.oldest_hold()) {
            // One millisecond of slack: tick() may step one past the deadline.
            if (now_ - *oldest > milliseconds(config_.total_timeout_ms + 1))
                oracle_.fail("I3: a batch held for " +
                             std::to_string(
                                 std::chrono::duration_cast<milliseconds>(now_ - *oldest).count()) +
                             " ms");
            if (!machine_.next_deadline())
                oracle_.fail("I3: batches held with no timer pending");
        }
        const bool replaying =
            std::holds_alternative<StreamStateMachine::Replaying>(machine_.phase());
        if (replaying != oracle_.current_replay.has_value())
            oracle_.fail("the machine's phase and its requests disagree");
        if (!ok())
            oracle_.failure += " (after " + what + ")";
    }

    static std::string describe(const Op& op);

    const ModelConfig& config_;
    Oracle oracle_;
    StreamStateMachine machine_;
    TimePoint now_{std::chrono::hours(1)};

    int incarnation_ = 0;
    bool fresh_incarnation_ = false;  // restarted, nothing published yet
    std::uint64_t next_seq_ = 0;
    std::deque<std::pair<std::uint64_t, std::string>> buffer_;
    std::set<std::uint64_t> skipped_;
    std::deque<std::pair<std::uint64_t, std::string>> live_queue_;
    bool connected_ = true;
    bool replay_up_ = true;
    std::size_t requests_seen_ = 0;
    std::deque<std::pair<std::uint64_t, std::uint64_t>> unserved_;
    std::deque<Reply> replies_;
};

const char* name_of(OpKind kind) {
    switch (kind) {
        case OpKind::kPublish:
            return "kPublish";
        case OpKind::kSkip:
            return "kSkip";
        case OpKind::kDeliverLive:
            return "kDeliverLive";
        case OpKind::kServeReplay:
            return "kServeReplay";
        case OpKind::kDeliverReplay:
            return "kDeliverReplay";
        case OpKind::kTick:
            return "kTick";
        case OpKind::kTickToDeadline:
            return "kTickToDeadline";
        case OpKind::kRestart:
            return "kRestart";
        case OpKind::kDisconnect:
            return "kDisconnect";
        case OpKind::kReconnect:
            return "kReconnect";
        case OpKind::kReplayDown:
            return "kReplayDown";
        case OpKind::kReplayUp:
            return "kReplayUp";
        case OpKind::kGrantTurn:
            return "kGrantTurn";
    }
    return "?";
}

std::string Simulator::describe(const Op& op) {
    return std::string(name_of(op.kind)) + " " + std::to_string(op.arg);
}

}  // namespace

void set_tracing(bool on) {
    tracing_on = on;
}

RunResult run(const ModelConfig& config, const std::vector<Op>& ops) {
    Simulator sim(config);
    std::size_t steps = 0;
    for (const Op& op : ops) {
        if (!sim.ok())
            break;
        sim.step(op);
        ++steps;
    }
    if (sim.ok())
        sim.settle();
    return sim.result(steps);
}

ModelConfig random_config(std::uint64_t seed) {
    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
    auto pick = [&rng](std::uint32_t lo, std::uint32_t hi) {
        return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    ModelConfig c;
    c.replay_available = pick(0, 9) != 0;
    c.published_before_start = pick(0, 3) == 0 ? 0 : pick(0, 80);
    switch (pick(0, 3)) {
        case 0:
            c.start_sequence = std::nullopt;
            break;
        case 1:
            c.start_sequence = 0;
            break;
        default:  // resuming from a saved position, behind or ahead of the publisher
            c.start_sequence = pick(0, 120);
            break;
    }
    c.max_buffered = pick(1, 40);
    c.buffer_steps = pick(1, 120);
    c.live_capacity = pick(2, 40);
    // At least 2: an anchored replay spends one reply on the anchor (the real bound is 1000).
    c.router_bound = pick(0, 2) == 0 ? pick(2, 30) : 0;
    c.idle_timeout_ms = pick(20, 200);
    c.total_timeout_ms = pick(c.idle_timeout_ms, 2000);
    c.backoff_initial_ms = pick(10, 300);
    c.backoff_max_ms = pick(c.backoff_initial_ms, 2000);
    c.tail_probe_idle_ms = pick(0, 4) == 0 ? 0 : pick(10, 500);
    c.replay_turns = pick(0, 2) == 0;
    return c;
}

std::vector<Op> random_ops(std::uint64_t seed, std::size_t count) {
    std::mt19937_64 rng(seed);
    auto pick = [&rng](std::uint32_t lo, std::uint32_t hi) {
        return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    // Weights per seed, so some runs are calm and some are storms.
    const std::uint32_t fault_rate = pick(1, 40);
    std::vector<Op> ops;
    ops.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint32_t r = pick(0, 999);
        if (r < 220) {
            ops.push_back({OpKind::kPublish, pick(1, pick(0, 5) == 0 ? 40 : 4)});
        } else if (r < 440) {
            ops.push_back({OpKind::kDeliverLive, pick(1, 30)});
        } else if (r < 520) {
            ops.push_back({OpKind::kServeReplay});
        } else if (r < 560) {
            ops.push_back({OpKind::kGrantTurn});
        } else if (r < 720) {
            ops.push_back({OpKind::kDeliverReplay, pick(1, 40)});
        } else if (r < 820) {
            ops.push_back({OpKind::kTick, pick(1, 300)});
        } else if (r < 880) {
            ops.push_back({OpKind::kTickToDeadline});
        } else if (r < 880 + fault_rate) {
            ops.push_back({OpKind::kRestart});
        } else if (r < 880 + 2 * fault_rate) {
            ops.push_back({OpKind::kDisconnect});
        } else if (r < 880 + 3 * fault_rate) {
            ops.push_back({pick(0, 1) == 0 ? OpKind::kReplayDown : OpKind::kReplayUp});
        } else if (r < 885 + 3 * fault_rate) {
            ops.push_back({OpKind::kSkip});
        } else {
            ops.push_back({OpKind::kReconnect});
        }
    }
    return ops;
}

std::vector<Op> shrink(const ModelConfig& config, std::vector<Op> ops) {
    // Keep to failures of the same kind (the text before the first digit).
    const std::string original = run(config, ops).failure;
    const auto kind = [](const std::string& failure) {
        return failure.substr(0, failure.find_first_of("0123456789"));
    };
    const auto same_failure = [&](const RunResult& r) {
        return !r.ok && kind(r.failure) == kind(original);
    };
    // Delta debugging: drop chunks of halving size while the run still fails.
    for (std::size_t chunk = ops.size() / 2; chunk >= 1; chunk /= 2) {
        for (std::size_t start = 0; start + chunk <= ops.size();) {
            std::vector<Op> candidate;
            candidate.reserve(ops.size() - chunk);
            const auto cut = ops.begin() + static_cast<std::ptrdiff_t>(start);
            candidate.insert(candidate.end(), ops.begin(), cut);
            candidate.insert(candidate.end(), cut + static_cast<std::ptrdiff_t>(chunk), ops.end());
            if (same_failure(run(config, candidate))) {
                ops = std::move(candidate);
            } else {
                start += chunk;
            }
        }
    }
    // Then make each argument as small as still fails.
    for (auto& op : ops) {
        while (op.arg > 1) {
            const std::uint32_t old = op.arg;
            op.arg = old / 2;
            if (!same_failure(run(config, ops))) {
                op.arg = old;
                break;
            }
        }
    }
    return ops;
}

std::string as_unit_test(const ModelConfig& c, const std::vector<Op>& ops) {
    std::ostringstream out;
    out << "TEST(StreamModelRegression, Name) {\n"
        << "    ModelConfig config;\n"
        << "    config.replay_available = " << (c.replay_available ? "true" : "false") << ";\n"
        << "    config.start_sequence = "
        << (c.start_sequence ? std::to_string(*c.start_sequence) : std::string("std::nullopt"))
        << ";\n"
        << "    config.published_before_start = " << c.published_before_start << ";\n"
        << "    config.max_buffered = " << c.max_buffered << ";\n"
        << "    config.buffer_steps = " << c.buffer_steps << ";\n"
        << "    config.live_capacity = " << c.live_capacity << ";\n"
        << "    config.router_bound = " << c.router_bound << ";\n"
        << "    config.idle_timeout_ms = " << c.idle_timeout_ms << ";\n"
        << "    config.total_timeout_ms = " << c.total_timeout_ms << ";\n"
        << "    config.backoff_initial_ms = " << c.backoff_initial_ms << ";\n"
        << "    config.backoff_max_ms = " << c.backoff_max_ms << ";\n"
        << "    config.tail_probe_idle_ms = " << c.tail_probe_idle_ms << ";\n"
        << "    config.replay_turns = " << (c.replay_turns ? "true" : "false") << ";\n"
        << "    const RunResult result = run(config, {\n";
    for (const Op& op : ops)
        out << "        {OpKind::" << name_of(op.kind) << ", " << op.arg << "},\n";
    out << "    });\n"
        << "    EXPECT_TRUE(result.ok) << result.failure;\n"
        << "}\n";
    return out.str();
}

}  // namespace kvevents::model

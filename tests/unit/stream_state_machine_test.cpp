// The stream state machine case by case: each test states the exact order of actions the shell
// (and so the handler) sees. The randomized model test covers the interleavings these miss.

#include "stream_state_machine.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace kvevents::detail {
namespace {

using namespace std::chrono_literals;
using Log = std::vector<std::string>;

// Records every action as one line.
class RecordingActions final : public StreamActions {
public:
    void deliver(RawBatch& batch) override {
        log.push_back((batch.replayed ? "replay " : "live ") + std::to_string(batch.sequence));
    }
    void announce_restart(std::uint64_t seq) override {
        log.push_back("restart " + std::to_string(seq));
    }
    void announce_loss(std::uint64_t first, std::uint64_t last) override {
        log.push_back("lost " + std::to_string(first) + "-" + std::to_string(last));
    }
    void announce_continuity_lost(std::uint64_t next) override {
        log.push_back("continuity lost, next " + std::to_string(next));
    }
    ReplaySend request_replay(std::uint64_t id,
                              std::uint64_t from,
                              ReplayPurpose purpose) override {
        last_id = id;
        log.push_back(std::string("request ") + to_string(purpose) + " from " +
                      std::to_string(from) + (requests_wait ? " (waiting)" : ""));
        if (!requests_succeed)
            return ReplaySend::kUnsendable;
        return requests_wait ? ReplaySend::kWaiting : ReplaySend::kSent;
    }
    void replay_ended(std::uint64_t, ReplayOutcome outcome) override {
        static const char* const names[] = {"completed", "timed out", "unsendable", "abandoned",
                                            "cancelled"};
        log.push_back(std::string("replay ") + names[static_cast<int>(outcome)]);
    }
    void duplicate_dropped(std::uint64_t seq) override {
        log.push_back("dup " + std::to_string(seq));
    }
    void buffer_overflow(std::uint64_t seq) override {
        log.push_back("overflow " + std::to_string(seq));
    }
    void gap_detected(std::uint64_t expected, std::uint64_t seen) override {
        log.push_back("gap " + std::to_string(expected) + "<" + std::to_string(seen));
    }

    Log take() { return std::exchange(log, {}); }

    Log log;
    std::uint64_t last_id = 0;
    bool requests_succeed = true;
    bool requests_wait = false;
};

// One machine, a clock, and batches whose bytes name their incarnation.
class Stream {
public:
    explicit Stream(StreamConfig config = {}) : machine(actions, config) {}

    static StreamConfig live_only(StreamConfig config = {}) {
        config.start_sequence = std::nullopt;
        return config;
    }

    void start() { machine.start(now); }
    void live(std::uint64_t seq, int incarnation = 0) {
        machine.on_live(batch(seq, incarnation, false), now);
    }
    void reply(std::uint64_t seq, int incarnation = 0) {
        machine.on_replay_batch(actions.last_id, batch(seq, incarnation, true), now);
    }
    void replies(std::uint64_t first, std::uint64_t last, int incarnation = 0) {
        for (std::uint64_t s = first; s <= last; ++s) reply(s, incarnation);
    }
    void end() { machine.on_replay_end(actions.last_id, now); }
    void advance(std::chrono::milliseconds d) {
        now += d;
        machine.on_tick(now);
    }
    Log take() { return actions.take(); }

    RecordingActions actions;
    StreamStateMachine machine;
    TimePoint now{std::chrono::seconds(1000)};

private:
    static RawBatch batch(std::uint64_t seq, int incarnation, bool replayed) {
        return RawBatch{seq, "", "inc" + std::to_string(incarnation) + "-" + std::to_string(seq),
                        replayed};
    }
};

TEST(StreamStateMachine, StartupReplayThenLiveWithOverlapDeliversEachOnceInOrder) {
    Stream s;
    s.start();
    EXPECT_EQ(s.take(), Log{"request start-up from 0"});
    s.live(3);  // arrives during the replay: held
    s.reply(0);
    s.reply(1);
    s.live(4);
    s.reply(2);
    s.reply(3);
    s.end();
    s.live(5);
    s.replies(3, 5);
    s.end();
    // The history came from replay first: live batches are hints until one matches its replayed
    // copy (the old incarnation's could still be queued). 3 was held from live and is delivered
    // from replay; 4 and 5, beyond that replay, come from one more, whose copy of 5 matches.
    EXPECT_EQ(s.take(), (Log{"gap 0<3", "replay 0", "replay 1", "dup 4", "replay 2", "replay 3",
                             "replay completed", "request start-up from 3", "dup 5", "replay 4",
                             "replay 5", "replay completed"}));
    s.live(6);  // trusted again: straight through
    EXPECT_EQ(s.take(), Log{"live 6"});
    EXPECT_TRUE(std::holds_alternative<StreamStateMachine::Live>(s.machine.phase()));
}

// Readiness (kReady) waits for history_settled(): the start-up history delivered, whatever
// replays it took, or given up while the replay endpoint backs off.
TEST(StreamStateMachine, HistoryIsSettledOnlyOnceTheStartupHistoryIsIn) {
    Stream s;
    EXPECT_TRUE(s.machine.history_settled());  // before start: nothing asked for
    s.start();
    EXPECT_FALSE(s.machine.history_settled());
    s.replies(0, 2);
    EXPECT_FALSE(s.machine.history_settled());
    s.end();
    EXPECT_TRUE(s.machine.history_settled());
    EXPECT_FALSE(s.machine.backing_off());
}

TEST(StreamStateMachine, HistoryCutShortIsSettledOnlyWhenTheRetryEnds) {
    Stream s;
    s.start();
    s.replies(0, 2);
    s.advance(2000ms);  // cut short: asked again at once
    EXPECT_FALSE(s.machine.history_settled());
    s.replies(2, 4);
    s.end();
    EXPECT_TRUE(s.machine.history_settled());
}

TEST(StreamStateMachine, HistoryInterruptedByAReconnectIsSettledWhenVerified) {
    Stream s;
    s.start();
    s.replies(0, 1);
    s.machine.on_reconnected(s.now);  // the start-up replay gives way to a verification
    EXPECT_EQ(s.take(), (Log{"request start-up from 0", "replay 0", "replay 1", "replay cancelled",
                             "request reconnect verification from 1"}));
    EXPECT_FALSE(s.machine.history_settled());
    s.replies(1, 3);
    s.end();
    EXPECT_TRUE(s.machine.history_settled());
}

TEST(StreamStateMachine, HistoryFromASilentEndpointIsSettledAsGivenUp) {
    Stream s;
    s.start();
    s.live(5);
    s.advance(2000ms);  // no answer
    EXPECT_TRUE(s.machine.history_settled());
    EXPECT_TRUE(s.machine.backing_off());
}

TEST(StreamStateMachine, HistoryWaitingForAReplayTurnIsNotSettled) {
    Stream s;
    s.actions.requests_wait = true;
    s.start();
    EXPECT_FALSE(s.machine.history_settled());
    s.machine.on_replay_sent(s.actions.last_id, s.now);
    s.end();
    EXPECT_TRUE(s.machine.history_settled());
}

TEST(StreamStateMachine, LiveGapIsFilledFromAReplayAnchoredOnTheLastDeliveredBatch) {
    Stream s(Stream::live_only());
    s.start();
    s.live(10);
    s.live(13);
    s.live(14);
    s.replies(10, 14);
    s.end();
    EXPECT_EQ(s.take(),
              (Log{"live 10", "gap 11<13", "request gap from 10", "replay 11", "replay 12",
                   "live 13", "live 14", "dup 13", "dup 14", "replay completed"}));
}

TEST(StreamStateMachine, LateLiveCopiesOfReplayedBatchesAreDuplicates) {
    Stream s;
    s.start();
    s.replies(0, 4);
    s.end();
    s.live(2);  // the live copy of a replayed batch, arriving late
    s.live(3);
    s.live(5);
    EXPECT_EQ(s.take(),
              (Log{"request start-up from 0", "replay 0", "replay 1", "replay 2", "replay 3",
                   "replay 4", "replay completed", "dup 2", "dup 3", "gap 4<5", "live 5"}));
}

// Issue case 1: history only from replay, then a restart on the same sockets.
TEST(StreamStateMachine, RestartAfterAStartupReplayBeforeAnyLiveBatchIsFound) {
    Stream s;
    s.start();
    s.replies(0, 4);
    s.end();
    s.take();
    s.live(0, 1);  // the new incarnation's first batch: not the bytes replay delivered
    s.live(1, 1);  // live batches are hints until replay vouches for them
    s.end();       // asked from our last batch (4): the publisher has nothing that far
    s.replies(0, 1, 1);
    s.end();
    s.live(2, 1);
    EXPECT_EQ(s.take(), (Log{"dup 0", "request start-up from 4", "dup 1", "replay completed",
                             "restart 0", "request start-up from 0", "replay 0", "replay 1",
                             "replay completed", "live 2"}));
}

TEST(StreamStateMachine, ReplayStartingLaterThanAskedReportsTheLostRange) {
    Stream s;
    s.start();
    s.replies(5, 6);
    s.end();
    EXPECT_EQ(s.take(), (Log{"request start-up from 0", "lost 0-4", "replay 5", "replay 6",
                             "replay completed"}));
}

// Nothing ties held batches below the publisher's history to its incarnation: a live stream
// that far behind, or another incarnation's batches, are not passed off as its own.
TEST(StreamStateMachine, HeldBatchesBelowTheReplaysFirstGoWithTheLoss) {
    Stream s;
    s.start();
    s.live(3);
    s.live(4);
    s.reply(5);  // the publisher's buffer starts at 5; we hold 3 and 4 ourselves
    s.end();
    EXPECT_EQ(s.take(), (Log{"request start-up from 0", "gap 0<3", "lost 0-4", "replay 5",
                             "replay completed"}));
}

TEST(StreamStateMachine, CutShortReplayOnAnIdleEngineIsAskedAgainWithNothingHeld) {
    Stream s;
    s.start();
    s.replies(0, 2);  // then the ROUTER drops the rest, end marker included
    s.advance(2000ms);
    s.replies(2, 4);
    s.end();
    EXPECT_EQ(s.take(), (Log{"request start-up from 0", "replay 0", "replay 1", "replay 2",
                             "replay timed out", "request start-up from 2", "replay 3", "replay 4",
                             "replay completed"}));
}

TEST(StreamStateMachine, SilentReplayEndpointReportsLossAndBacksOff) {
    StreamConfig config = Stream::live_only();
    config.tail_probe_idle = 0ms;
    Stream s(config);
    s.start();
    s.live(0);
    s.live(2);
    s.advance(2000ms);  // no answer
    s.live(4);          // backing off: announced at once
    s.advance(1000ms);  // the backoff is over
    s.live(6);
    // Holes no replay could check may hide a restart: announced as lost continuity.
    EXPECT_EQ(s.take(),
              (Log{"live 0", "gap 1<2", "request gap from 0", "replay timed out",
                   "continuity lost, next 2", "live 2", "gap 3<4", "continuity lost, next 4",
                   "live 4", "gap 5<6", "request gap from 4"}));
    EXPECT_TRUE(std::holds_alternative<StreamStateMachine::Replaying>(s.machine.phase()));
}

// Issue case 5: live 0, 2, 4 with a silent replay endpoint: nothing stays held without a timer.
TEST(StreamStateMachine, BatchesBehindASecondGapAreNeverHeldWithoutATimer) {
    Stream s(Stream::live_only());
    s.start();
    s.live(0);
    s.live(2);
    s.live(4);
    EXPECT_EQ(s.machine.held(), 2U);
    ASSERT_TRUE(s.machine.next_deadline());
    s.advance(2000ms);
    EXPECT_EQ(s.take(),
              (Log{"live 0", "gap 1<2", "request gap from 0", "gap 3<4", "replay timed out",
                   "continuity lost, next 2", "live 2", "continuity lost, next 4", "live 4"}));
    EXPECT_EQ(s.machine.held(), 0U);
}

TEST(StreamStateMachine, WithoutReplayGapsAreReportedAndLiveFlows) {
    StreamConfig config = Stream::live_only();
    config.replay_available = false;
    Stream s(config);
    s.start();
    s.live(0);
    s.live(2);
    EXPECT_EQ(s.take(), (Log{"live 0", "gap 1<2", "lost 1-1", "live 2"}));
}

TEST(StreamStateMachine, SequenceGoingBackIsARestartReportedBeforeNewBatches) {
    Stream s(Stream::live_only());
    s.start();
    s.live(5);
    s.live(6);
    s.live(2, 1);
    s.replies(0, 2, 1);
    s.end();
    s.live(3, 1);  // live 2 matched its replayed copy: live is trusted again
    s.live(4, 1);
    EXPECT_EQ(s.take(),
              (Log{"live 5", "live 6", "restart 2", "request start-up from 0", "dup 2", "replay 0",
                   "replay 1", "replay 2", "replay completed", "live 3", "live 4"}));
}

// Issue case 8: nothing from the replay that a restart cancelled reaches the stream.
TEST(StreamStateMachine, RepliesToACancelledReplayAreIgnoredEntirely) {
    Stream s(Stream::live_only());
    s.start();
    s.live(5);
    s.live(7);
    const std::uint64_t old_id = s.actions.last_id;
    s.live(0, 1);  // restart during the replay
    s.take();
    s.machine.on_replay_batch(old_id, RawBatch{5, "", "inc0-5", true}, s.now);
    s.machine.on_replay_batch(old_id, RawBatch{6, "", "inc0-6", true}, s.now);
    s.machine.on_replay_end(old_id, s.now);
    EXPECT_EQ(s.take(), Log{});
}

TEST(StreamStateMachine, RestartDuringAReplayCancelsIt) {
    Stream s(Stream::live_only());
    s.start();
    s.live(5);
    s.live(7);
    s.live(0, 1);
    EXPECT_EQ(s.take(), (Log{"live 5", "gap 6<7", "request gap from 5", "restart 0",
                             "replay cancelled", "request start-up from 0", "dup 0"}));
}

// Issue case 7: overflow-dropped batches are fetched again at once on a quiet stream.
TEST(StreamStateMachine, BatchesDroppedFromAFullHoldBufferAreRefetchedWithoutMoreTraffic) {
    StreamConfig config = Stream::live_only();
    config.max_buffered = 2;
    Stream s(config);
    s.start();
    s.live(0);
    s.live(2);  // the replay is served now, with 0..2
    s.live(3);
    s.live(4);  // the buffer holds 2 and 3: 4 is dropped
    s.replies(0, 2);
    s.end();
    EXPECT_EQ(s.take(),
              (Log{"live 0", "gap 1<2", "request gap from 0", "overflow 4", "replay 1", "live 2",
                   "live 3", "dup 2", "replay completed", "request gap from 3"}));
    s.replies(3, 4);
    s.end();
    EXPECT_EQ(s.take(), (Log{"replay 4", "replay completed"}));
}

TEST(StreamStateMachine, AHoleTheReplayCannotFillIsAskedOnceMoreThenReported) {
    Stream s(Stream::live_only());
    s.start();
    s.live(0);
    s.live(2);
    s.reply(0);
    s.reply(2);
    s.end();  // 1 was never buffered (an encoding error upstream)
    s.reply(0);
    s.reply(2);
    s.end();
    EXPECT_EQ(s.take(),
              (Log{"live 0", "gap 1<2", "request gap from 0", "dup 2", "replay completed",
                   "request gap from 0", "dup 2", "replay completed", "lost 1-1", "live 2"}));
}

TEST(StreamStateMachine, ReconnectFetchesWhatWasSentWhileAwayAndHoldsLiveUntilProven) {
    Stream s(Stream::live_only());
    s.start();
    s.live(0);
    s.machine.on_reconnected(s.now);
    s.live(3);  // held: not delivered before the publisher is proven the same
    EXPECT_TRUE(s.machine.continuity_unproven());
    s.replies(0, 3);
    s.end();
    EXPECT_EQ(s.take(), (Log{"live 0", "request reconnect verification from 0", "gap 1<3",
                             "replay 1", "replay 2", "live 3", "dup 3", "replay completed"}));
    EXPECT_FALSE(s.machine.continuity_unproven());
}

TEST(StreamStateMachine, ReconnectFindsARestartThatCaughtUpByComparingBytes) {
    Stream s(Stream::live_only());
    s.start();
    s.live(0);
    s.live(1);
    s.machine.on_reconnected(s.now);
    s.live(3, 1);
    s.reply(1, 1);  // the new incarnation's batch 1: other bytes
    EXPECT_EQ(s.take(), (Log{"live 0", "live 1", "request reconnect verification from 1", "gap 2<3",
                             "restart 0", "replay cancelled", "request start-up from 0"}));
    s.replies(0, 3, 1);
    s.end();
    EXPECT_EQ(s.take(), (Log{"replay 0", "replay 1", "replay 2", "replay 3", "replay completed"}));
}

TEST(StreamStateMachine, ReconnectFindsARestartWithFewerBatches) {
    Stream s(Stream::live_only());
    s.start();
    s.live(4);
    s.machine.on_reconnected(s.now);
    s.end();  // nothing from 4 on
    EXPECT_EQ(s.take(), (Log{"live 4", "request reconnect verification from 4", "replay completed",
                             "restart 0", "request start-up from 0"}));
}

// Issue case 2: a restart behind a reconnect while a replay is in flight is verified at once, and
// nothing of the new incarnation is delivered before.
TEST(StreamStateMachine, ReconnectDuringAReplayVerifiesAtOnce) {
    Stream s(Stream::live_only());
    s.start();
    s.live(0);
    s.live(2);  // gap replay in flight
    s.machine.on_reconnected(s.now);
    s.live(7, 1);  // the new incarnation, above the old sequence: held
    EXPECT_EQ(s.take(), (Log{"live 0", "gap 1<2", "request gap from 0", "replay cancelled",
                             "request reconnect verification from 0", "gap 3<7"}));
    s.reply(0, 1);
    EXPECT_EQ(s.take(), (Log{"restart 0", "replay cancelled", "request start-up from 0"}));
}

TEST(StreamStateMachine, ReconnectDuringBackoffIsVerifiedAtOnce) {
    Stream s;
    s.start();
    s.advance(2000ms);  // no answer: backoff
    s.live(0);
    s.machine.on_reconnected(s.now);
    s.live(1);
    s.replies(0, 1);
    EXPECT_EQ(s.take(), (Log{"request start-up from 0", "replay timed out", "live 0",
                             "request reconnect verification from 0", "live 1", "dup 1"}));
}

// Issue case 3: a verification that times out is announced, never dropped silently.
TEST(StreamStateMachine, AReconnectCheckThatTimesOutAnnouncesLostContinuity) {
    Stream s(Stream::live_only());
    s.start();
    s.live(0);
    s.machine.on_reconnected(s.now);
    s.live(5);
    s.advance(2000ms);
    EXPECT_EQ(s.take(), (Log{"live 0", "request reconnect verification from 0", "gap 1<5",
                             "replay timed out", "continuity lost, next 5", "live 5"}));
}

// Issue case 4: the publisher no longer holds the last delivered batch.
TEST(StreamStateMachine, AReconnectToAPublisherWithoutOurLastBatchAnnouncesLostContinuity) {
    Stream s(Stream::live_only());
    s.start();
    s.live(304);
    s.machine.on_reconnected(s.now);
    s.live(6400);
    s.replies(6322, 6323);
    EXPECT_EQ(s.take(), (Log{"live 304", "request reconnect verification from 304", "gap 305<6400",
                             "continuity lost, next 6322", "replay 6322", "replay 6323"}));
}

TEST(StreamStateMachine, ReconnectWithoutReplayJudgesByTheNextLiveBatch) {
    StreamConfig config = Stream::live_only();
    config.replay_available = false;
    Stream s(config);
    s.start();
    s.live(0);
    s.machine.on_reconnected(s.now);
    s.live(1);  // the next sequence: taken as the same publisher
    s.machine.on_reconnected(s.now);
    s.live(9);  // a jump after a reconnect: a loss and a restart look the same
    s.machine.on_reconnected(s.now);
    s.live(3, 1);  // back: a restart
    EXPECT_EQ(s.take(), (Log{"live 0", "live 1", "gap 2<9", "continuity lost, next 9", "live 9",
                             "restart 3", "gap 0<3", "lost 0-2", "live 3"}));
}

// Issue case 6: resuming from a saved sequence the restarted publisher has not reached.
TEST(StreamStateMachine, StartSequenceAheadOfThePublisherIsARestart) {
    StreamConfig config;
    config.start_sequence = 100;
    Stream s(config);
    s.start();
    s.end();  // nothing from 100 on
    s.live(5, 1);
    s.replies(0, 5, 1);
    s.end();
    // Asked from 99, the last batch before the saved position: holding nothing from there on,
    // the publisher is not the one the position came from.
    EXPECT_EQ(s.take(), (Log{"request start-up from 99", "replay completed", "restart 0",
                             "request start-up from 0", "dup 5", "replay 0", "replay 1", "replay 2",
                             "replay 3", "replay 4", "replay 5", "replay completed"}));
}

// Issue case 10: a loss at the end of a burst, then silence.
TEST(StreamStateMachine, AQuietStreamAfterABacklogIsProbedForItsTail) {
    Stream s(Stream::live_only());
    s.start();
    s.live(0);
    s.live(1);
    s.machine.on_backlog(s.now);  // the queues were deep: 2 and 3 were dropped
    s.advance(999ms);
    EXPECT_EQ(s.take(), (Log{"live 0", "live 1"}));
    s.advance(1ms);
    s.replies(1, 3);
    s.end();
    EXPECT_EQ(s.take(),
              (Log{"request tail probe from 1", "replay 2", "replay 3", "replay completed"}));
    EXPECT_FALSE(s.machine.tail_probe_wanted());
    EXPECT_FALSE(s.machine.next_deadline());  // nothing more to do: no timer
}

TEST(StreamStateMachine, AProbeFindsAQuietRestart) {
    Stream s(Stream::live_only());
    s.start();
    s.live(7);
    s.machine.on_backlog(s.now);
    s.advance(1000ms);
    s.end();  // nothing from 7 on
    EXPECT_EQ(s.take(), (Log{"live 7", "request tail probe from 7", "replay completed", "restart 0",
                             "request start-up from 0"}));
}

// I3: a replay that keeps answering slowly cannot hold a batch past replay_total_timeout.
TEST(StreamStateMachine, NoBatchIsHeldLongerThanTheTotalTimeout) {
    StreamConfig config = Stream::live_only();
    config.tail_probe_idle = 0ms;
    Stream s(config);
    s.start();
    s.live(0);
    s.live(100);
    for (std::uint64_t seq = 0; seq < 30; ++seq) {
        s.reply(seq);
        s.advance(1000ms);
    }
    EXPECT_EQ(s.machine.held(), 0U);
    const Log log = s.take();
    // At 30 s the total timeout asks again (the replay was progressing); the batch held since
    // the start then reaches its limit, and that replay is abandoned. No replay vouched for the
    // held batch: it could be another incarnation's.
    const Log tail(log.end() - 5, log.end());
    EXPECT_EQ(tail, (Log{"replay timed out", "request gap from 29", "replay abandoned",
                         "continuity lost, next 100", "live 100"}));
}

// A replay socket that cannot be opened is a failed replay, not a dead stream.
TEST(StreamStateMachine, AnUnsendableRequestIsAFailedReplay) {
    Stream s(Stream::live_only());
    s.actions.requests_succeed = false;
    s.start();
    s.live(0);
    s.live(2);
    EXPECT_EQ(s.take(), (Log{"live 0", "gap 1<2", "request gap from 0", "replay unsendable",
                             "continuity lost, next 2", "live 2"}));
    EXPECT_TRUE(std::holds_alternative<StreamStateMachine::BackingOff>(s.machine.phase()));
}

TEST(StreamStateMachine, BackoffDoublesUpToItsMaximumAndResetsOnAnAnswer) {
    StreamConfig config = Stream::live_only();
    config.backoff_initial = 100ms;
    config.backoff_max = 300ms;
    config.tail_probe_idle = 0ms;
    Stream s(config);
    s.start();
    s.live(0);
    std::vector<std::chrono::milliseconds> backoffs;
    auto fail_a_gap_replay = [&](std::uint64_t seq) {
        s.live(seq);  // a gap: replay requested, never answered
        s.advance(2000ms);
        const auto until = std::get<StreamStateMachine::BackingOff>(s.machine.phase()).until;
        backoffs.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(until - s.now));
        s.advance(backoffs.back());
    };
    fail_a_gap_replay(2);
    fail_a_gap_replay(4);
    fail_a_gap_replay(6);
    fail_a_gap_replay(8);
    s.live(10);
    s.replies(8, 10);
    s.end();  // answered: back to the initial backoff
    fail_a_gap_replay(12);
    EXPECT_EQ(backoffs,
              (std::vector<std::chrono::milliseconds>{100ms, 200ms, 300ms, 300ms, 100ms}));
}

TEST(StreamStateMachine, MemoryIsBounded) {
    StreamConfig config = Stream::live_only();
    config.max_buffered = 8;
    Stream s(config);
    s.start();
    s.live(0);
    for (std::uint64_t seq = 2; seq < 100; ++seq) s.live(seq);
    EXPECT_EQ(s.machine.held(), 8U);
    s.replies(0, 60);
    EXPECT_LE(s.machine.digests_kept(), 8U);
}

TEST(StreamStateMachine, AReplayWaitingItsTurnRunsNoTimersUntilSentButHeldBatchesStillExpire) {
    StreamConfig config;
    config.replay_idle_timeout = std::chrono::milliseconds(100);
    config.replay_total_timeout = std::chrono::milliseconds(1000);
    Stream s(config);
    s.actions.requests_wait = true;
    s.start();
    EXPECT_EQ(s.take(), Log{"request start-up from 0 (waiting)"});
    EXPECT_FALSE(s.machine.next_deadline().has_value());  // nothing held, no timer
    s.advance(std::chrono::milliseconds(500));            // longer than the idle timeout
    EXPECT_EQ(s.take(), Log{});
    s.machine.on_replay_sent(s.actions.last_id, s.now);
    s.replies(0, 1);
    s.end();
    EXPECT_EQ(s.take(), (Log{"replay 0", "replay 1", "replay completed"}));

    Stream gap(Stream::live_only(config));
    gap.actions.requests_wait = true;
    gap.start();
    gap.live(0);
    gap.live(3);  // a gap whose replay must wait: 3 is held, within the usual bound
    EXPECT_EQ(gap.take(), (Log{"live 0", "gap 1<3", "request gap from 0 (waiting)"}));
    ASSERT_TRUE(gap.machine.next_deadline().has_value());
    EXPECT_EQ(*gap.machine.next_deadline(), gap.now + config.replay_total_timeout);
    gap.advance(config.replay_total_timeout);  // still waiting: the held batch is given up on
    // The stream has been quiet since the gap, so its tail is probed (that waits its turn too).
    EXPECT_EQ(gap.take(), (Log{"replay abandoned", "continuity lost, next 3", "live 3",
                               "request tail probe from 3 (waiting)"}));
}

}  // namespace
}  // namespace kvevents::detail

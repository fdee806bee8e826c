#include "stream_sequencer.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kvevents::detail {
namespace {

// Records every sink call as one line, so a test states the exact order the handler would see.
class RecordingSink final : public SequencerSink {
public:
    void deliver(RawBatch& batch) override {
        log.push_back((batch.replayed ? "replay " : "live ") + std::to_string(batch.sequence));
    }
    void publisher_restarted(std::uint64_t seq) override {
        log.push_back("restart " + std::to_string(seq));
    }
    void unrecoverable(std::uint64_t first, std::uint64_t last) override {
        log.push_back("lost " + std::to_string(first) + "-" + std::to_string(last));
    }
    void request_replay(std::uint64_t from) override {
        log.push_back("request " + std::to_string(from));
    }
    void duplicate_dropped(std::uint64_t seq) override {
        log.push_back("dup " + std::to_string(seq));
    }
    void buffer_overflow(std::uint64_t seq) override {
        log.push_back("overflow " + std::to_string(seq));
    }
    void gap_detected(std::uint64_t first, std::uint64_t seen) override {
        log.push_back("gap " + std::to_string(first) + "<" + std::to_string(seen));
    }

    std::vector<std::string> take() { return std::exchange(log, {}); }
    std::vector<std::string> log;
};

RawBatch live(std::uint64_t seq) {
    return RawBatch{seq, "", "p", false};
}
RawBatch replay(std::uint64_t seq) {
    return RawBatch{seq, "", "p", true};
}

using Log = std::vector<std::string>;

TEST(StreamSequencer, StartupReplayThenLiveWithOverlapDeliversEachOnceInOrder) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    EXPECT_EQ(sink.take(), Log{"request 0"});
    seq.on_live(live(3));  // arrives during replay: held
    seq.on_replay_batch(replay(0));
    seq.on_replay_batch(replay(1));
    seq.on_live(live(4));
    seq.on_replay_batch(replay(2));
    seq.on_replay_batch(replay(3));  // also held from live: the replay copy wins
    seq.on_replay_end();
    seq.on_live(live(5));
    EXPECT_EQ(sink.take(),
              (Log{"replay 0", "replay 1", "replay 2", "live 3", "live 4", "dup 3", "live 5"}));
    EXPECT_FALSE(seq.replay_in_flight());
}

TEST(StreamSequencer, LiveGapIsFilledFromReplay) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(10));
    seq.on_live(live(13));
    seq.on_live(live(14));
    seq.on_replay_batch(replay(11));
    seq.on_replay_batch(replay(12));
    seq.on_replay_batch(replay(13));
    seq.on_replay_batch(replay(14));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"live 10", "gap 11<13", "request 11", "replay 11", "replay 12",
                                "live 13", "live 14", "dup 13", "dup 14"}));
}

TEST(StreamSequencer, ReplayStartingLaterThanAskedReportsLostRange) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    seq.on_replay_batch(replay(7));
    seq.on_replay_batch(replay(8));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"request 0", "lost 0-6", "replay 7", "replay 8"}));
}

TEST(StreamSequencer, RepliesDroppedMidReplayAreAskedForAgain) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    seq.on_replay_batch(replay(0));
    seq.on_replay_batch(replay(3));  // 1 and 2 dropped by the publisher's ROUTER
    seq.on_replay_end();
    seq.on_replay_batch(replay(1));
    seq.on_replay_batch(replay(2));
    seq.on_replay_batch(replay(3));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"request 0", "replay 0", "request 1", "replay 1", "replay 2",
                                "replay 3", "dup 3"}));
}

TEST(StreamSequencer, LostEndMarkerAfterProgressRetriesFromNextHole) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    seq.on_live(live(5));
    seq.on_replay_batch(replay(0));
    seq.on_replay_batch(replay(1));
    seq.on_replay_timeout();  // the rest and the end marker were dropped
    EXPECT_FALSE(seq.backoff_active());
    seq.on_replay_batch(replay(2));
    seq.on_replay_batch(replay(3));
    seq.on_replay_batch(replay(4));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"request 0", "replay 0", "replay 1", "request 2", "replay 2",
                                "replay 3", "replay 4", "live 5"}));
}

TEST(StreamSequencer, SilentReplayEndpointReportsLossAndStopsHoldingLive) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    seq.on_live(live(4));
    seq.on_live(live(5));
    seq.on_replay_timeout();
    EXPECT_TRUE(seq.backoff_active());
    seq.on_live(live(9));  // a new gap during backoff is reported at once
    EXPECT_EQ(sink.take(),
              (Log{"request 0", "lost 0-3", "live 4", "live 5", "gap 6<9", "lost 6-8", "live 9"}));
    seq.replay_backoff_over();
    seq.on_live(live(11));
    EXPECT_EQ(sink.take(), (Log{"gap 10<11", "request 10"}));
}

TEST(StreamSequencer, WithoutReplayGapsAreReportedAndLiveFlows) {
    RecordingSink sink;
    StreamSequencer seq(sink, false, 0, 100);
    seq.start();
    seq.on_live(live(2));
    seq.on_live(live(3));
    seq.on_live(live(6));
    EXPECT_EQ(sink.take(),
              (Log{"gap 0<2", "lost 0-1", "live 2", "live 3", "gap 4<6", "lost 4-5", "live 6"}));
}

TEST(StreamSequencer, SequenceGoingBackIsARestartReportedBeforeNewBatches) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(40));
    seq.on_live(live(41));
    seq.on_live(live(2));  // new incarnation; 0 and 1 went out before we saw it
    seq.on_replay_batch(replay(0));
    seq.on_replay_batch(replay(1));
    seq.on_replay_batch(replay(2));
    seq.on_replay_end();
    seq.on_live(live(3));
    EXPECT_EQ(sink.take(), (Log{"live 40", "live 41", "restart 2", "gap 0<2", "request 0",
                                "replay 0", "replay 1", "live 2", "dup 2", "live 3"}));
}

TEST(StreamSequencer, RestartAtZeroNeedsNoReplay) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(7));
    seq.on_live(live(0));
    EXPECT_EQ(sink.take(), (Log{"live 7", "restart 0", "live 0"}));
}

TEST(StreamSequencer, LateRepliesOfAnAbandonedReplayAreIgnored) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    seq.on_replay_timeout();
    seq.on_replay_batch(replay(0));
    EXPECT_EQ(sink.take(), (Log{"request 0", "dup 0"}));
}

TEST(StreamSequencer, BufferIsBoundedAndOverflowIsRefetched) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 2);
    seq.start();
    seq.on_live(live(1));
    seq.on_live(live(2));
    seq.on_live(live(3));  // over the bound: dropped, to be replayed
    EXPECT_EQ(seq.buffered(), 2U);
    seq.on_replay_batch(replay(0));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"request 0", "overflow 3", "replay 0", "live 1", "live 2"}));
    seq.on_live(live(4));
    EXPECT_EQ(sink.take(), (Log{"gap 3<4", "request 3"}));
    seq.on_replay_batch(replay(3));
    seq.on_replay_batch(replay(4));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"replay 3", "live 4", "dup 4"}));
}

TEST(StreamSequencer, HoleTheReplayCannotFillIsReportedOnce) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(0));
    seq.on_live(live(3));
    seq.on_replay_end();  // the publisher has nothing for 1..2: asked once more, then given up
    seq.on_replay_end();
    EXPECT_EQ(sink.take(),
              (Log{"live 0", "gap 1<3", "request 1", "request 1", "lost 1-2", "live 3"}));
}

TEST(StreamSequencer, ReconnectFetchesWhatWasSentWhileAway) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(0));
    seq.on_live(live(1));
    seq.on_reconnected();
    seq.on_replay_batch(replay(1));  // same bytes as delivered: same publisher
    seq.on_replay_batch(replay(2));
    seq.on_replay_end();
    seq.on_live(live(3));
    EXPECT_EQ(sink.take(), (Log{"live 0", "live 1", "request 1", "dup 1", "replay 2", "live 3"}));
}

TEST(StreamSequencer, ReconnectFindsARestartThatCaughtUpByComparingBytes) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(0));
    seq.on_live(live(1));
    seq.on_reconnected();
    seq.on_replay_batch(RawBatch{1, "", "other", true});  // a different batch 1: new incarnation
    seq.on_replay_batch(replay(0));
    seq.on_replay_batch(replay(1));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"live 0", "live 1", "request 1", "restart 0", "request 0",
                                "replay 0", "replay 1"}));
}

TEST(StreamSequencer, ReconnectFindsARestartWithFewerBatches) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    for (std::uint64_t i = 0; i < 5; ++i) seq.on_live(live(i));
    sink.take();
    seq.on_reconnected();
    seq.on_replay_end();  // nothing from 4 on: the publisher has fewer batches than we saw
    seq.on_replay_batch(replay(0));
    seq.on_replay_end();
    seq.on_live(live(1));  // the new incarnation's next live batch is not a restart again
    EXPECT_EQ(sink.take(), (Log{"request 4", "restart 0", "request 0", "replay 0", "live 1"}));
}

TEST(StreamSequencer, ReconnectWithoutReplayChangesNothing) {
    RecordingSink sink;
    StreamSequencer seq(sink, false, std::nullopt, 100);
    seq.start();
    seq.on_live(live(0));
    seq.on_reconnected();
    seq.on_live(live(1));
    EXPECT_EQ(sink.take(), (Log{"live 0", "live 1"}));
}

TEST(StreamSequencer, CutShortReplayOnAnIdleEngineIsAskedAgainWithNothingHeld) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    seq.on_replay_batch(replay(0));
    seq.on_replay_batch(replay(1));
    seq.on_replay_timeout();  // the rest and the end marker were dropped; no live traffic
    seq.on_replay_batch(replay(2));
    seq.on_replay_end();
    EXPECT_EQ(sink.take(), (Log{"request 0", "replay 0", "replay 1", "request 2", "replay 2"}));
}

TEST(StreamSequencer, HeldBatchesBeforeTheReplaysFirstAreDeliveredNotLost) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(0));
    seq.on_live(live(4));  // gap 1..3; replay asked from 1
    seq.on_live(live(5));
    seq.on_replay_batch(replay(6));  // the publisher's history starts after what we hold
    seq.on_replay_end();
    EXPECT_EQ(sink.take(),
              (Log{"live 0", "gap 1<4", "request 1", "lost 1-3", "live 4", "live 5", "replay 6"}));
}

TEST(StreamSequencer, ReconnectDuringAReplayIsVerifiedAfterIt) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, std::nullopt, 100);
    seq.start();
    seq.on_live(live(0));
    seq.on_live(live(2));  // replay from 1 in flight
    seq.on_reconnected();  // deferred
    seq.on_replay_batch(replay(1));
    seq.on_replay_end();
    seq.on_replay_batch(replay(2));  // the verification reply: same bytes
    seq.on_replay_end();
    EXPECT_EQ(sink.take(),
              (Log{"live 0", "gap 1<2", "request 1", "replay 1", "live 2", "request 2", "dup 2"}));
}

TEST(StreamSequencer, ReconnectDuringBackoffIsVerifiedWhenItEnds) {
    RecordingSink sink;
    StreamSequencer seq(sink, true, 0, 100);
    seq.start();
    seq.on_replay_timeout();  // no answer: backoff
    seq.on_live(live(0));
    seq.on_reconnected();
    EXPECT_EQ(sink.take(), (Log{"request 0", "live 0"}));
    seq.replay_backoff_over();
    EXPECT_EQ(sink.take(), (Log{"request 0"}));
}

}  // namespace
}  // namespace kvevents::detail

// Regression tests at the public API for the ways a stream once lost batches or hid restarts:
// each case a gateway could hit, on real sockets against the mock publisher. Every batch reaches
// the handler once and in order, or its loss is announced; a restart is announced before the new
// incarnation's first batch.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <kvevents/testing/mock_publisher.h>
#include <kvevents/zmq_client.h>

#include "client_fixtures.h"
#include "recording_handler.h"

namespace kvevents {
namespace {

using namespace std::chrono_literals;
using test::incarnation_of;
using test::options_for;
using test::publish_n;
using test::RecordingHandler;
using test::start_client;
using testing::MockPublisher;
using testing::MockPublisherOptions;
using Log = std::vector<std::string>;

Log batches(std::uint64_t first, std::uint64_t last) {
    Log out;
    for (std::uint64_t s = first; s <= last; ++s) out.push_back("batch " + std::to_string(s));
    return out;
}

Log join(std::initializer_list<Log> parts) {
    Log out;
    for (const Log& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// Live only at start, so the first batches arrive live and set the stream's position.
ClientOptions live_start(const MockPublisher& pub) {
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    return o;
}

// The engine dies and a new one binds the same ports, sequence from 0.
void replace_engine(MockPublisher& pub, RecordingHandler& handler) {
    pub.close();
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kDisconnected));
    pub.reopen(/*keep_history=*/false);
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
}

// Batches 0..2 delivered, 3 lost on the way, 4 held, and the gap replay waiting on a replay
// endpoint that ignores it.
std::unique_ptr<ZmqClient> start_with_a_waiting_gap_replay(MockPublisher& pub,
                                                           RecordingHandler& handler) {
    ClientOptions o = live_start(pub);
    o.replay_idle_timeout = 20s;  // still waiting when the test goes on
    auto client = start_client(pub, handler, o);
    publish_n(pub, 3);
    EXPECT_TRUE(handler.wait_for_batches(3));
    pub.set_replay_enabled(false);
    pub.drop_live({3});
    publish_n(pub, 2);
    // Wait until the endpoint has read and dropped the request, so that enabling replay later
    // cannot answer it after all.
    EXPECT_TRUE(handler.wait_for([&](const RecordingHandler&) {
        return client->stats().replays_requested == 1 && pub.replays_ignored() == 1;
    }));
    return client;
}

// History only from the start-up replay, then a restart on the same sockets.
TEST(StreamGuarantees, RestartAfterAStartupReplayBeforeAnyLiveBatchIsAnnounced) {
    MockPublisher pub;
    publish_n(pub, 5);
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    ASSERT_TRUE(handler.wait_for_batches(5));
    pub.restart();
    publish_n(pub, 3, /*incarnation=*/1);
    ASSERT_TRUE(handler.wait_for_batches(8));
    EXPECT_EQ(handler.log(), join({batches(0, 4), {"restart"}, batches(0, 2)}));
    EXPECT_EQ(incarnation_of(handler.batches()[5]), 1U);
    EXPECT_EQ(client->stats().restarts, 1U);
}

// A reconnect while a gap replay is in flight: the new engine, already past the old sequence,
// must not pass for the old one.
TEST(StreamGuarantees, RestartBehindAReconnectDuringAReplayIsAnnounced) {
    MockPublisher pub;
    RecordingHandler handler;
    auto client = start_with_a_waiting_gap_replay(pub, handler);
    pub.set_replay_enabled(true);  // before the new engine binds: its check must be answered
    replace_engine(pub, handler);
    pub.drop_live({0, 1, 2, 3, 4, 5});
    publish_n(pub, 10, /*incarnation=*/1);
    ASSERT_TRUE(handler.wait_for_batches(13));
    EXPECT_EQ(handler.log(), join({batches(0, 2), {"restart"}, batches(0, 9)}));
    for (std::size_t i = 3; i < 13; ++i) EXPECT_EQ(incarnation_of(handler.batches()[i]), 1U);
}

// The reconnect check gets no answer: the handler is told continuity is lost before any batch of
// the new engine.
TEST(StreamGuarantees, AReconnectCheckThatTimesOutAnnouncesLostContinuity) {
    MockPublisher pub;
    RecordingHandler handler;
    auto client = start_client(pub, handler, live_start(pub));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    pub.set_replay_enabled(false);  // before the new engine binds: its check goes unanswered
    replace_engine(pub, handler);
    pub.drop_live({0, 1, 2, 3, 4, 5});
    publish_n(pub, 10, /*incarnation=*/1);
    ASSERT_TRUE(handler.wait_for_batches(7));
    EXPECT_EQ(handler.log(), join({batches(0, 2), {"continuity lost, next 6"}, batches(6, 9)}));
    EXPECT_EQ(client->stats().continuity_lost, 1U);
}

// The engine restarted while away and its buffer no longer reaches back to our last batch.
TEST(StreamGuarantees, APublisherWithoutOurLastBatchAnnouncesLostContinuity) {
    MockPublisherOptions po;
    po.buffer_steps = 5;
    MockPublisher pub(po);
    RecordingHandler handler;
    auto client = start_client(pub, handler, live_start(pub));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    pub.close();
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kDisconnected));
    pub.reopen(/*keep_history=*/false);
    // Published before the client is back (it reconnects after reconnect_interval): the new
    // engine holds 7..11 when the reconnect check reaches it.
    publish_n(pub, 12, /*incarnation=*/1);
    ASSERT_TRUE(handler.wait_for_batches(8));
    EXPECT_EQ(handler.log(), join({batches(0, 2), {"continuity lost, next 7"}, batches(7, 11)}));
    EXPECT_EQ(client->stats().restarts, 0U);
    EXPECT_EQ(client->stats().batches_unrecoverable, 0U);  // not a loss in the old numbering
}

// Live 0, 2, 4 with a silent replay endpoint: 4 is not held without a timer.
TEST(StreamGuarantees, BatchesBehindASecondGapAreDeliveredWithinTheTimeout) {
    MockPublisher pub;
    pub.set_replay_enabled(false);
    RecordingHandler handler;
    auto client = start_client(pub, handler, live_start(pub));
    pub.drop_live({1, 3});
    publish_n(pub, 5);
    ASSERT_TRUE(handler.wait_for_batches(3));
    EXPECT_EQ(handler.log(), (Log{"batch 0", "continuity lost, next 2", "batch 2",
                                  "continuity lost, next 4", "batch 4"}));
}

// Resuming from a saved position after the engine restarted and has not got that far.
TEST(StreamGuarantees, StartSequenceAheadOfThePublisherIsARestart) {
    MockPublisher pub;
    publish_n(pub, 5);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = 100;
    auto client = start_client(pub, handler, o);
    ASSERT_TRUE(handler.wait_for_batches(5));
    EXPECT_EQ(handler.log(), join({{"restart"}, batches(0, 4)}));
}

// Without replay, a start position ahead of the publisher is a restart too, shown by the first
// live batch.
TEST(StreamGuarantees, StartSequenceAheadWithoutReplayIsARestart) {
    MockPublisherOptions po;
    po.replay_endpoint.clear();
    MockPublisher pub(po);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.replay_endpoint.clear();
    o.start_sequence = 100;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    EXPECT_EQ(handler.log(), join({{"restart"}, batches(0, 2)}));
}

// A restart while a replay waits: the replay is cancelled, which counts as no failure.
TEST(StreamGuarantees, ARestartDuringAReplayCancelsIt) {
    MockPublisher pub;
    RecordingHandler handler;
    auto client = start_with_a_waiting_gap_replay(pub, handler);
    pub.restart();
    pub.set_replay_enabled(true);
    publish_n(pub, 3, /*incarnation=*/1);
    ASSERT_TRUE(handler.wait_for_batches(6));
    EXPECT_EQ(handler.log(), join({batches(0, 2), {"restart"}, batches(0, 2)}));
    const ClientStats s = client->stats();
    EXPECT_EQ(s.replays_failed, 0U);
    EXPECT_EQ(s.restarts, 1U);
}

// libzmq dropped the end of a burst behind a slow handler, then the engine went quiet: the
// client probes the replay endpoint and recovers the tail.
TEST(StreamGuarantees, ALostTailAfterBackPressureIsRecoveredOnAQuietStream) {
    MockPublisher pub;
    RecordingHandler handler;
    std::mutex gate_mu;
    std::condition_variable gate_cv;
    bool release = false;
    handler.before_batch = [&](const ReceivedBatch& b) {
        if (b.sequence != 0)
            return;
        std::unique_lock<std::mutex> lock(gate_mu);
        gate_cv.wait(lock, [&] { return release; });
    };
    ClientOptions o = live_start(pub);
    o.receive_hwm = 10;
    o.tail_probe_idle = 200ms;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 1);  // the handler holds this one while the burst queues up
    pub.drop_live({18, 19});
    publish_n(pub, 19);
    {
        std::lock_guard<std::mutex> lock(gate_mu);
        release = true;
    }
    gate_cv.notify_all();
    ASSERT_TRUE(handler.wait_for_batches(20));
    EXPECT_EQ(handler.sequences(), test::range(0, 19));
    EXPECT_GE(client->stats().replays_requested, 1U);
}

class NoticeThrowingHandler final : public RecordingHandler {
public:
    void on_notice(const StreamNotice& n) override {
        RecordingHandler::on_notice(n);
        throw std::runtime_error("notice handler failed");
    }
};

TEST(StreamGuarantees, NoticeHandlerExceptionsAreCountedAndStateSaysStopped) {
    MockPublisher pub;
    NoticeThrowingHandler handler;
    auto client = start_client(pub, handler, live_start(pub));
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected));
    ASSERT_TRUE(handler.wait_for(
        [&](const RecordingHandler&) { return client->stats().handler_errors >= 1; }));
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(1));  // the stream goes on
    EXPECT_EQ(client->stats().state, ConnectionState::kConnected);
    client->Stop();
    EXPECT_EQ(client->stats().state, ConnectionState::kStopped);
    EXPECT_STREQ(to_string(ConnectionState::kStopped), "stopped");
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KVEVENTS_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KVEVENTS_TEST_SANITIZED 1
#endif

// With the descriptor limit reached, the replay socket cannot be opened: a failed replay whose
// hole is announced, and the client goes on.
TEST(StreamGuarantees, AReplaySocketThatCannotBeOpenedIsAFailedReplay) {
#ifdef KVEVENTS_TEST_SANITIZED
    GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own to report";
#endif
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = live_start(pub);
    o.tail_probe_idle = 0ms;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rlimit tight = saved;
    // The limit bounds descriptor numbers, not their count: at 3, no new descriptor can be
    // opened however many others close meanwhile (open ones stay usable).
    tight.rlim_cur = 3;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
    pub.drop_live({3});
    publish_n(pub, 2);
    const bool delivered = handler.wait_for_batches(4);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ASSERT_TRUE(delivered);
    EXPECT_EQ(handler.log(), join({batches(0, 2), {"continuity lost, next 4", "batch 4"}}));
    EXPECT_TRUE(client->running());
    EXPECT_EQ(client->stats().replays_failed, 1U);
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(5));
}

}  // namespace
}  // namespace kvevents

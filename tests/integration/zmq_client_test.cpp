// ZmqClient against the in-process MockPublisher on loopback: every delivery guarantee the client
// makes, proven on real sockets. Tests wait on conditions with deadlines, never on sleeps.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <kvevents/testing/mock_publisher.h>
#include <kvevents/zmq_client.h>

#include "client_fixtures.h"
#include "recording_handler.h"
#include "test_batches.h"
#include "test_endpoints.h"

namespace kvevents {
namespace {

using namespace std::chrono_literals;
using test::options_for;
using test::publish_n;
using test::range;
using test::RecordingHandler;
using test::start_client;
using testing::MockPublisher;
using testing::MockPublisherOptions;

TEST(ZmqClient, StartupReplayThenLiveDeliversEveryBatchOnceInOrder) {
    MockPublisher pub;
    publish_n(pub, 5);  // before the client exists: only replay can bring these
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    publish_n(pub, 5);
    ASSERT_TRUE(handler.wait_for_batches(10));
    EXPECT_EQ(handler.sequences(), range(0, 9));
    const auto batches = handler.batches();
    EXPECT_TRUE(batches[0].replayed);
    EXPECT_EQ(batches[0].pod_key, "pod-a");
    EXPECT_EQ(batches[0].model_name, "model-x");
    EXPECT_EQ(std::get<BlockStored>(batches[3].batch.events[0]).block_hashes[0].to_u64(), 1003U);
    // Live batches beyond the start-up replay may take one more replay to be vouched for.
    ASSERT_TRUE(handler.wait_for(
        [&](const RecordingHandler&) { return client->stats().replays_completed >= 1; }));
    client->Stop();
    const ClientStats s = client->stats();
    EXPECT_EQ(s.batches, 10U);
    EXPECT_EQ(s.events, 10U);
    EXPECT_GE(s.replays_completed, 1U);
    EXPECT_EQ(s.last_sequence, 9U);
    EXPECT_EQ(s.batches_unrecoverable, 0U);
}

// Every publisher flavour the mock can imitate, through the whole client path.
struct Flavour {
    const char* name;
    testing::WireEra era;
    bool map_envelope;
    testing::ReplayEnvelope replay;
    bool digest_hashes;
};

class ZmqClientFlavours : public ::testing::TestWithParam<Flavour> {};

TEST_P(ZmqClientFlavours, ReplayAndLiveDecodeEveryLayout) {
    const Flavour f = GetParam();
    MockPublisherOptions po;
    po.encoding.era = f.era;
    po.encoding.map_envelope = f.map_envelope;
    po.replay_envelope = f.replay;
    po.topic = "kv@pod-a@model-x";
    MockPublisher pub(po);
    auto batch_with = [&](std::uint64_t i) {
        EventBatch b = test::one_store(i);
        if (f.digest_hashes) {
            const std::uint8_t digest[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                                             0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(i)};
            std::get<BlockStored>(b.events[0]).block_hashes = {BlockHash::from_digest(digest, 16)};
        }
        BlockRemoved removed;
        removed.block_hashes = {BlockHash::from_signed(-static_cast<std::int64_t>(i) - 1)};
        b.events.emplace_back(std::move(removed));
        b.events.emplace_back(AllBlocksCleared{});
        return b;
    };
    for (std::uint64_t i = 0; i < 3; ++i) pub.publish(batch_with(i));
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    for (std::uint64_t i = 3; i < 6; ++i) pub.publish(batch_with(i));
    ASSERT_TRUE(handler.wait_for_batches(6));
    EXPECT_EQ(handler.sequences(), range(0, 5));
    const auto batches = handler.batches();
    for (std::size_t i = 0; i < batches.size(); ++i) {
        SCOPED_TRACE(i);
        const EventBatch& b = batches[i].batch;
        ASSERT_EQ(b.events.size(), 3U);
        const BlockHash& stored = std::get<BlockStored>(b.events[0]).block_hashes.at(0);
        EXPECT_EQ(stored.to_u64(), i);  // digests end in i: their last 8 bytes read as i
        EXPECT_EQ(stored.is_digest(), f.digest_hashes);
        EXPECT_EQ(std::get<BlockRemoved>(b.events[1]).block_hashes.at(0).to_string(),
                  "-" + std::to_string(i + 1));
        EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(b.events[2]));
        if (batches[i].replayed && f.replay == testing::ReplayEnvelope::kWithoutTopic) {
            // Older replay replies carry no topic: the client uses the live stream's, once seen.
            EXPECT_TRUE(batches[i].topic.empty() || batches[i].topic == "kv@pod-a@model-x");
        } else {
            EXPECT_EQ(batches[i].topic, "kv@pod-a@model-x");
        }
        if (f.era != testing::WireEra::kV0_9) {
            EXPECT_EQ(b.data_parallel_rank, 0);
        }
    }
    EXPECT_EQ(client->stats().decode_errors, 0U);
}

INSTANTIATE_TEST_SUITE_P(
    AllLayouts,
    ZmqClientFlavours,
    ::testing::Values(Flavour{"v0_9_no_topic_replay", testing::WireEra::kV0_9, false,
                              testing::ReplayEnvelope::kWithoutTopic, false},
                      Flavour{"medium_digests", testing::WireEra::kMedium, false,
                              testing::ReplayEnvelope::kWithoutTopic, true},
                      Flavour{"last_positional", testing::WireEra::kKvCacheSpec, false,
                              testing::ReplayEnvelope::kWithoutTopic, false},
                      Flavour{"sglang", testing::WireEra::kSglang, false,
                              testing::ReplayEnvelope::kWithoutTopic, false},
                      Flavour{"map_events", testing::WireEra::kMapEvents, false,
                              testing::ReplayEnvelope::kWithTopic, false},
                      Flavour{"map_events_digests", testing::WireEra::kMapEvents, false,
                              testing::ReplayEnvelope::kWithTopic, true},
                      Flavour{"map_envelope", testing::WireEra::kMapEvents, true,
                              testing::ReplayEnvelope::kWithTopic, false}),
    [](const ::testing::TestParamInfo<Flavour>& param_info) {
        return std::string(param_info.param.name);
    });

TEST(ZmqClient, ReplayRepliesWithoutTopicTakeTheLiveTopic) {
    MockPublisherOptions po;
    po.topic = "kv@pod-a";
    po.replay_envelope = testing::ReplayEnvelope::kWithoutTopic;
    MockPublisher pub(po);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    pub.drop_live({1});
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    const auto batches = handler.batches();
    ASSERT_TRUE(batches[1].replayed);
    EXPECT_EQ(batches[1].topic, "kv@pod-a");
}

TEST(ZmqClient, ZmtpHeartbeatsCanBeTurnedOn) {
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.heartbeat_interval = 50ms;
    o.heartbeat_timeout = 500ms;
    o.tcp_keepalive = false;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 2);
    ASSERT_TRUE(handler.wait_for_batches(2));
    EXPECT_EQ(handler.sequences(), range(0, 1));
}

TEST(ZmqClient, LagIsMeasuredFromTheBatchTimestamp) {
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    EventBatch old = test::one_store(1);
    old.ts =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() -
        2.0;  // stamped two seconds ago
    pub.publish(old);
    EventBatch fresh = test::one_store(2);
    fresh.ts = 1e300;  // nonsense from the wire counts as no lag, not as undefined behaviour
    pub.publish(fresh);
    ASSERT_TRUE(handler.wait_for_batches(2));
    const ClientStats s = client->stats();
    EXPECT_GE(s.max_lag, std::chrono::seconds(2));
    EXPECT_EQ(s.last_lag, std::chrono::microseconds(0));
}

TEST(ZmqClient, ErrorLogIsRateLimitedButEveryErrorIsCounted) {
    test::CapturedLog log;
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    o.logger = log.logger;
    o.log_errors_per_second = 3;
    auto client = start_client(pub, handler, o);
    for (int i = 0; i < 50; ++i) pub.send_raw_frames({"only one frame"});
    ASSERT_TRUE(handler.wait_for(
        [](const RecordingHandler& h) { return h.count(StreamNotice::Kind::kDecodeError) == 50; }));
    client->Stop();
    EXPECT_EQ(client->stats().decode_errors, 50U);
    const std::size_t error_lines = log.lines_with("decode error").size();
    EXPECT_GE(error_lines, 3U);
    EXPECT_LT(error_lines, 50U);
}

TEST(ZmqClient, LambdaHandlerAdapterReceivesBatchesAndNotices) {
    MockPublisher pub;
    std::mutex mu;
    std::vector<std::uint64_t> seen;
    std::size_t notices = 0;
    std::condition_variable cv;
    LambdaEventHandler handler(
        [&](const ReceivedBatch& b) {
            std::lock_guard<std::mutex> lock(mu);
            seen.push_back(b.sequence);
            cv.notify_all();
        },
        [&](const StreamNotice&) {
            std::lock_guard<std::mutex> lock(mu);
            ++notices;
        });
    ClientOptions o = options_for(pub);
    ZmqClient client(o, handler);
    client.Start();
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 2);
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return seen.size() == 2; }));
    EXPECT_GE(notices, 1U);  // at least the connection notice
}

// The handler owns what it is given: batches moved out arrive whole, and the client fills in
// every field again for the next one.
TEST(ZmqClient, AHandlerMayMoveBatchesAndKeepNoticesPastTheClient) {
    static_assert(std::is_copy_assignable_v<StreamNotice> &&
                  std::is_copy_assignable_v<ReceivedBatch>);
    MockPublisher pub;
    std::mutex mu;
    std::condition_variable arrived;
    std::vector<ReceivedBatch> kept;
    std::vector<StreamNotice> notices;
    LambdaEventHandler handler(
        [&](ReceivedBatch& b) {
            std::lock_guard<std::mutex> lock(mu);
            kept.push_back(std::move(b));
            arrived.notify_all();
        },
        [&](const StreamNotice& n) {
            std::lock_guard<std::mutex> lock(mu);
            notices.push_back(n);
        });
    {
        ClientOptions o = options_for(pub);
        o.model_name = "a-model-name-longer-than-any-small-string-buffer";
        ZmqClient client(o, handler);
        client.Start();
        ASSERT_TRUE(pub.wait_for_subscriber(10s));
        publish_n(pub, 4);
        std::unique_lock<std::mutex> lock(mu);
        EXPECT_TRUE(arrived.wait_for(lock, 10s, [&] { return kept.size() >= 4; }));
        lock.unlock();
        client.Stop();
    }
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(kept.size(), 4U);
    for (std::uint64_t i = 0; i < kept.size(); ++i) {
        EXPECT_EQ(kept[i].sequence, i);
        EXPECT_EQ(kept[i].pod_key, "pod-a");
        EXPECT_EQ(kept[i].model_name, "a-model-name-longer-than-any-small-string-buffer");
        ASSERT_EQ(kept[i].batch.events.size(), 1U);
        EXPECT_EQ(std::get<BlockStored>(kept[i].batch.events[0]).block_hashes[0].to_u64(),
                  1000 + i);
    }
    // Notices are values: still whole after the client is gone.
    ASSERT_FALSE(notices.empty());
    for (const StreamNotice& n : notices) EXPECT_EQ(n.pod_key, "pod-a");
}

// libzmq dials an IPv6 literal only with ZMQ_IPV6 set; without it the client would sit in
// `connecting` for ever.
TEST(ZmqClient, AnIpv6LiteralEndpointIsFollowedWithReplay) {
    MockPublisherOptions po;
    po.endpoint = "tcp://[::1]:*";
    po.replay_endpoint = "tcp://[::1]:*";
    MockPublisher pub(po);
    ASSERT_EQ(pub.endpoint().rfind("tcp://[::1]:", 0), 0U) << pub.endpoint();
    publish_n(pub, 2);  // history: only replay brings it
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    publish_n(pub, 2);
    ASSERT_TRUE(handler.wait_for_batches(4));
    EXPECT_EQ(handler.sequences(), range(0, 3));
}

TEST(ZmqClient, LiveGapIsFilledFromReplayAndOverlapIsDroppedAsDuplicates) {
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;  // live only at start
    auto client = start_client(pub, handler, o);
    pub.drop_live({3});
    publish_n(pub, 7);
    ASSERT_TRUE(handler.wait_for_batches(7));
    EXPECT_EQ(handler.sequences(), range(0, 6));
    // 4, 5 and 6 arrive both live and from the replay of 3..6: one copy of each is dropped
    // (more if a slow run times the replay out and asks again).
    ASSERT_TRUE(handler.wait_for(
        [&](const RecordingHandler&) { return client->stats().duplicates_dropped >= 3; }));
    const ClientStats s = client->stats();
    EXPECT_EQ(s.gaps_detected, 1U);
    EXPECT_GE(s.batches_recovered, 1U);
    EXPECT_GE(s.replays_requested, 1U);
}

TEST(ZmqClient, ReplayThatStartsLaterThanAskedReportsTheLostRange) {
    MockPublisherOptions po;
    po.buffer_steps = 5;
    MockPublisher pub(po);
    publish_n(pub, 20);  // only 15..19 are still held
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    ASSERT_TRUE(handler.wait_for_batches(5));
    EXPECT_EQ(handler.log(), (std::vector<std::string>{"lost 0-14", "batch 15", "batch 16",
                                                       "batch 17", "batch 18", "batch 19"}));
    EXPECT_EQ(client->stats().batches_unrecoverable, 15U);
}

TEST(ZmqClient, RestartIsReportedBeforeTheNewIncarnationsBatches) {
    MockPublisher pub;
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    pub.restart();
    publish_n(pub, 2);
    ASSERT_TRUE(handler.wait_for_batches(5));
    EXPECT_EQ(handler.log(), (std::vector<std::string>{"batch 0", "batch 1", "batch 2", "restart",
                                                       "batch 0", "batch 1"}));
    EXPECT_EQ(client->stats().restarts, 1U);
}

TEST(ZmqClient, RestartWithLostFirstBatchesIsReplayedFromZero) {
    MockPublisher pub;
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    publish_n(pub, 4);
    ASSERT_TRUE(handler.wait_for_batches(4));
    pub.restart();
    pub.drop_live({0, 1});
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(7));
    EXPECT_EQ(handler.log(),
              (std::vector<std::string>{"batch 0", "batch 1", "batch 2", "batch 3", "restart",
                                        "batch 0", "batch 1", "batch 2"}));
}

TEST(ZmqClient, ReconnectFetchesWhatWasPublishedWhileDisconnected) {
    MockPublisher pub;
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    pub.close();  // killed
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kDisconnected));
    pub.reopen(/*keep_history=*/true);  // back on the same ports, same incarnation
    // 3 and 4 never reach the live socket: only the reconnect replay can deliver them.
    pub.drop_live({3, 4});
    publish_n(pub, 2);
    ASSERT_TRUE(handler.wait_for_batches(5));
    EXPECT_EQ(handler.sequences(), range(0, 4));
    EXPECT_EQ(handler.count(StreamNotice::Kind::kPublisherRestarted), 0U);
    EXPECT_GE(client->stats().reconnects, 1U);
}

TEST(ZmqClient, ReconnectToANewIncarnationThatCaughtUpIsARestart) {
    MockPublisher pub;
    RecordingHandler handler;
    auto client = start_client(pub, handler, options_for(pub));
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    pub.close();
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kDisconnected));
    pub.reopen(/*keep_history=*/false);  // a new engine: sequence from 0, different batches
    pub.drop_live({0, 1, 2, 3, 4});
    for (std::uint64_t i = 0; i < 5; ++i) pub.publish(test::one_store(5000 + i));
    ASSERT_TRUE(handler.wait_for_batches(8));
    EXPECT_EQ(handler.log(),
              (std::vector<std::string>{"batch 0", "batch 1", "batch 2", "restart", "batch 0",
                                        "batch 1", "batch 2", "batch 3", "batch 4"}));
    EXPECT_EQ(std::get<BlockStored>(handler.batches()[3].batch.events[0]).block_hashes[0].to_u64(),
              5000U);
}

TEST(ZmqClient, WithoutReplayGapsAreReportedAndLiveFlows) {
    MockPublisherOptions po;
    po.replay_endpoint.clear();
    MockPublisher pub(po);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.replay_endpoint.clear();
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    pub.drop_live({2});
    publish_n(pub, 5);
    ASSERT_TRUE(handler.wait_for_batches(4));
    EXPECT_EQ(handler.log(),
              (std::vector<std::string>{"batch 0", "batch 1", "lost 2-2", "batch 3", "batch 4"}));
    EXPECT_EQ(client->stats().replays_requested, 0U);
}

// A hole no replay could check may hide a restart whose first batches were lost: it is announced
// as lost continuity.
TEST(ZmqClient, SilentReplayEndpointTimesOutAnnouncesLostContinuityAndKeepsLiveFlowing) {
    MockPublisher pub;
    pub.set_replay_enabled(false);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    o.replay_backoff_initial = std::chrono::minutes(1);  // the whole test runs inside the backoff
    o.replay_backoff_max = std::chrono::minutes(1);
    auto client = start_client(pub, handler, o);
    pub.drop_live({2});
    publish_n(pub, 5);
    ASSERT_TRUE(handler.wait_for_batches(4));
    EXPECT_EQ(handler.log(),
              (std::vector<std::string>{"batch 0", "batch 1", "continuity lost, next 3", "batch 3",
                                        "batch 4"}));
    EXPECT_EQ(client->stats().replays_failed, 1U);
    // While backing off, a new gap is reported at once instead of waiting on replay again.
    pub.drop_live({6});
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(6));
    EXPECT_EQ(handler.log().back(), "batch 7");
    EXPECT_EQ(client->stats().replays_failed, 1U);
}

TEST(ZmqClient, BadFramesAndPayloadsAreReportedAndTheStreamGoesOn) {
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(1));
    pub.send_raw_frames({"", "\x00\x00\x00\x01"});                          // two frames
    pub.send_raw_frames({"", std::string("\x00\x00\x00\x01", 4), "\x90"});  // 4-byte sequence
    pub.publish_payload("\xc1");                                            // undecodable: seq 1
    publish_n(pub, 1);                                                      // seq 2
    ASSERT_TRUE(handler.wait_for_batches(2));
    EXPECT_EQ(handler.sequences(), (std::vector<std::uint64_t>{0, 2}));
    ASSERT_TRUE(handler.wait_for(
        [](const RecordingHandler& h) { return h.count(StreamNotice::Kind::kDecodeError) == 3; }));
    EXPECT_EQ(client->stats().decode_errors, 3U);
    EXPECT_EQ(client->stats().reconnects, 0U);
    const auto notices = handler.notices();
    bool saw_frame_count = false;
    for (const auto& n : notices) {
        saw_frame_count |= n.detail.find("2 frames, expected 3") != std::string::npos;
    }
    EXPECT_TRUE(saw_frame_count);
}

TEST(ZmqClient, HandlerExceptionIsReportedAndDeliveryContinues) {
    MockPublisher pub;
    RecordingHandler handler;
    handler.before_batch = [](const ReceivedBatch& b) {
        if (b.sequence == 1)
            throw std::runtime_error("index full");
    };
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(2));
    ASSERT_TRUE(handler.wait_for_notice(StreamNotice::Kind::kHandlerError));
    EXPECT_EQ(handler.sequences(), (std::vector<std::uint64_t>{0, 2}));
    EXPECT_EQ(handler.notices().back().detail.find("index full") != std::string::npos ||
                  client->stats().handler_errors == 1,
              true);
    EXPECT_EQ(client->stats().handler_errors, 1U);
}

TEST(ZmqClient, TopicFilterSelectsByPrefix) {
    MockPublisherOptions po;
    po.topic = "kv@pod-a@model-x";
    MockPublisher pub(po);
    RecordingHandler wrong;
    RecordingHandler right;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    o.topic_filter = "kv@pod-b";
    auto wrong_client = start_client(pub, wrong, o);  // its subscription arrives first
    o.topic_filter = "kv@pod-a";
    auto right_client = start_client(pub, right, o);
    publish_n(pub, 2);
    ASSERT_TRUE(right.wait_for_batches(2));
    EXPECT_EQ(right.batches()[0].topic, "kv@pod-a@model-x");
    wrong_client->Stop();
    EXPECT_EQ(wrong.batch_count(), 0U);
}

TEST(ZmqClient, DataParallelRankOffsetsThePorts) {
    MockPublisher pub;
    const std::string live = pub.endpoint();
    const std::string replay = pub.replay_endpoint();
    auto minus_one = [](const std::string& ep) {
        const auto colon = ep.rfind(':');
        return ep.substr(0, colon + 1) + std::to_string(std::stoi(ep.substr(colon + 1)) - 1);
    };
    publish_n(pub, 2);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.endpoint = minus_one(live);
    o.replay_endpoint = minus_one(replay);
    o.data_parallel_rank = 1;
    auto client = start_client(pub, handler, o);
    EXPECT_EQ(client->live_endpoint(), live);
    ASSERT_TRUE(handler.wait_for_batches(2));
    EXPECT_EQ(handler.batches()[0].batch.data_parallel_rank, 0);
}

TEST(ZmqClient, BindModeReceivesFromAnEngineThatConnectsOut) {
    RecordingHandler handler;
    ClientOptions o;
    o.pod_key = "pod-bind";
    o.endpoint = "tcp://127.0.0.1:*";
    o.bind = true;
    o.replay_enabled = false;
    o.start_sequence = std::nullopt;
    ZmqClient client(o, handler);
    client.Start();
    const std::string bound = client.live_endpoint();
    ASSERT_NE(bound.find("tcp://127.0.0.1:"), std::string::npos);
    MockPublisher pub(test::connecting_to(bound));
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 2);
    ASSERT_TRUE(handler.wait_for_batches(2));
    EXPECT_EQ(handler.sequences(), range(0, 1));
}

TEST(ZmqClient, PublisherStartedAfterTheClientIsPickedUp) {
    const auto [live, replay] = test::unused_endpoints();
    RecordingHandler handler;
    ClientOptions o;
    o.pod_key = "pod-late";
    o.endpoint = live;
    o.replay_endpoint = replay;
    o.replay_idle_timeout = 300ms;
    o.replay_backoff_initial = 300ms;
    o.reconnect_interval = 20ms;
    o.reconnect_interval_max = 50ms;
    ZmqClient client(o, handler);
    client.Start();
    MockPublisherOptions po;
    po.endpoint = live;
    po.replay_endpoint = replay;
    MockPublisher pub(po);
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(3));
    EXPECT_EQ(handler.sequences(), range(0, 2));
}

TEST(ZmqClient, LargeReplayWithReplyLossesAndRandomLiveDropsLosesNothing) {
    MockPublisherOptions po;
    po.replay_drop_after = 1000;  // as the real ROUTER past its send HWM
    MockPublisher pub(po);
    publish_n(pub, 3000);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.replay_idle_timeout = 200ms;
    auto client = start_client(pub, handler, o);
    pub.drop_live_randomly(0.05, 42);
    publish_n(pub, 1000);
    ASSERT_TRUE(handler.wait_for_batches(4000, 60s));
    EXPECT_EQ(handler.sequences(), range(0, 3999));
    const ClientStats s = client->stats();
    EXPECT_GE(s.replays_requested, 3U);
    EXPECT_EQ(s.batches_unrecoverable, 0U);
}

TEST(ZmqClient, StopIsIdempotentAndNoHandlerCallStartsAfterIt) {
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    std::atomic<bool> publishing{true};
    std::thread publisher([&] {
        std::uint64_t i = 0;
        while (publishing) pub.publish(test::one_store(i++));
    });
    ASSERT_TRUE(handler.wait_for_batches(100));
    client->Stop();
    const std::size_t at_stop = handler.batch_count();
    client->Stop();
    EXPECT_FALSE(client->running());
    publishing = false;
    publisher.join();
    EXPECT_EQ(handler.batch_count(), at_stop);
}

TEST(ZmqClient, StopFromInsideTheHandlerEndsTheStream) {
    MockPublisher pub;
    RecordingHandler handler;
    ZmqClient* self = nullptr;
    handler.before_batch = [&](const ReceivedBatch& b) {
        if (b.sequence == 1)
            self->Stop();
    };
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    ZmqClient client(o, handler);
    self = &client;
    client.Start();
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 5);
    ASSERT_TRUE(handler.wait_for_batches(2));
    EXPECT_FALSE(client.running());
    client.Stop();  // joins the loop, which exited after the handler returned
    EXPECT_EQ(handler.batch_count(), 2U);
}

TEST(ZmqClient, StopWaitsForABlockedHandler) {
    MockPublisher pub;
    RecordingHandler handler;
    std::mutex gate_mu;
    std::condition_variable gate_cv;
    bool entered = false;
    bool release = false;
    handler.before_batch = [&](const ReceivedBatch&) {
        std::unique_lock<std::mutex> lock(gate_mu);
        entered = true;
        gate_cv.notify_all();
        gate_cv.wait(lock, [&] { return release; });
    };
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 3);
    {
        std::unique_lock<std::mutex> lock(gate_mu);
        ASSERT_TRUE(gate_cv.wait_for(lock, 10s, [&] { return entered; }));
    }
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
        client->Stop();
        stopped = true;
    });
    // Release the handler only once Stop() has been asked for (running() turns false then), so
    // the batches behind the blocked one must not be delivered.
    EXPECT_TRUE(handler.wait_for([&](const RecordingHandler&) { return !client->running(); }));
    {
        std::lock_guard<std::mutex> lock(gate_mu);
        EXPECT_FALSE(stopped);  // still inside the handler
        release = true;
        gate_cv.notify_all();
    }
    stopper.join();
    EXPECT_TRUE(stopped);
    EXPECT_EQ(handler.batch_count(), 1U);
}

TEST(ZmqClient, ManyStartStopCyclesLeakNoThreadsOrSockets) {
    auto count_fds = [] {
        std::size_t n = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
            (void)e;
            ++n;
        }
        return n;
    };
    auto count_threads = [] {
        std::size_t n = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
            (void)e;
            ++n;
        }
        return n;
    };
    {
        // Warm-up: whatever the process creates once on first use (sanitizer runtimes, loggers)
        // must not count as a leak.
        MockPublisher warm_pub;
        RecordingHandler warm_handler;
        ZmqClient warm(options_for(warm_pub), warm_handler);
        warm.Start();
    }
    // Counted with no publisher alive: its end closes accepted connections asynchronously, but
    // destroying it (and each client) tears its context down synchronously.
    const std::size_t fds_before = count_fds();
    const std::size_t threads_before = count_threads();
    auto pub = std::make_unique<MockPublisher>();
    for (int i = 0; i < 200; ++i) {
        RecordingHandler handler;
        ZmqClient client(options_for(*pub), handler);
        client.Start();
        if (i % 2 == 0)
            client.Stop();  // the other half rely on the destructor
    }
    pub.reset();
    EXPECT_EQ(count_fds(), fds_before);
    EXPECT_EQ(count_threads(), threads_before);
}

TEST(ZmqClient, InvalidOptionsAreRejectedWithTheFieldNamed) {
    RecordingHandler handler;
    auto message_of = [&](ClientOptions o) -> std::string {
        try {
            ZmqClient client(std::move(o), handler);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    ClientOptions good;
    good.pod_key = "p";
    good.endpoint = "tcp://127.0.0.1:5557";
    ClientOptions o = good;
    o.pod_key.clear();
    EXPECT_NE(message_of(o).find("pod_key"), std::string::npos);
    o = good;
    o.endpoint.clear();
    EXPECT_NE(message_of(o).find("endpoint or pod_ip"), std::string::npos);
    o = good;
    o.endpoint = "http://x:1";
    EXPECT_NE(message_of(o).find("tcp://, ipc:// or inproc://"), std::string::npos);
    o = good;
    o.max_buffered_batches = 0;
    EXPECT_NE(message_of(o).find("max_buffered_batches"), std::string::npos);
    o = good;
    o.data_parallel_rank = -1;
    EXPECT_NE(message_of(o).find("rank"), std::string::npos);
    o = good;
    o.replay_backoff_max = 1ms;
    EXPECT_NE(message_of(o).find("replay_backoff_max"), std::string::npos);
}

TEST(ZmqClient, UnusableReplayEndpointIsRefusedBeforeAnythingOpens) {
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.replay_endpoint = "tcp://127.0.0.1:notaport";
    try {
        ZmqClient client(o, handler);
        FAIL() << "the constructor should have thrown";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("ClientOptions.replay_endpoint "
                                             "'tcp://127.0.0.1:notaport' has port 'notaport'"),
                  std::string::npos)
            << e.what();
    }
}

TEST(ZmqClient, UnbindableEndpointFailsStart) {
    MockPublisher pub;  // holds the port
    RecordingHandler handler;
    ClientOptions o;
    o.pod_key = "p";
    o.endpoint = pub.endpoint();
    o.bind = true;
    ZmqClient client(o, handler);
    try {
        client.Start();
        FAIL() << "Start should have thrown";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(pub.endpoint()), std::string::npos) << e.what();
    }
}

TEST(ZmqClient, AnIdleClientDoesNotWakeUp) {
    testing::MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.replay_endpoint.clear();
    o.replay_enabled = false;
    o.start_sequence = std::nullopt;
    auto client = start_client(pub, handler, o);
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(1));
    ASSERT_TRUE(handler.wait_for([&](const RecordingHandler&) {
        return client->stats().state == ConnectionState::kConnected;
    }));
    const std::uint64_t woken = client->stats().wakeups;
    EXPECT_GT(woken, 0u);
    // No timer is due: the loop waits on its sockets alone. (Before, it woke every 100 ms.)
    EXPECT_FALSE(
        handler.wait_for([&](const RecordingHandler&) { return client->stats().wakeups > woken; },
                         std::chrono::milliseconds(500)));
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(2));
    EXPECT_GT(client->stats().wakeups, woken);
    client->Stop();  // wakes the waiting loop at once
    EXPECT_FALSE(client->running());
}

TEST(ZmqClient, ClientsSharingAContextRunAndStopIndependently) {
    auto context = std::make_shared<ZmqContext>(ZmqContextOptions{1, 1024});
    test::TwoPublishers two;
    auto& [pub_a, pub_b, handler_a, handler_b, options_a, options_b] = two;
    options_a.context = context;
    options_b.context = context;
    const long before = context.use_count();
    auto client_a = start_client(pub_a, handler_a, options_a);
    auto client_b = start_client(pub_b, handler_b, options_b);
    // Each client holds it twice: in its copy of the options, and as the context it uses.
    EXPECT_EQ(context.use_count(), before + 4);
    publish_n(pub_a, 3);
    publish_n(pub_b, 2);
    ASSERT_TRUE(handler_a.wait_for_batches(3));
    ASSERT_TRUE(handler_b.wait_for_batches(2));
    client_a->Stop();  // leaves the shared context and the other client alone
    client_a.reset();
    publish_n(pub_b, 2);
    ASSERT_TRUE(handler_b.wait_for_batches(4));
    EXPECT_EQ(handler_b.log(),
              (std::vector<std::string>{"batch 0", "batch 1", "batch 2", "batch 3"}));
    EXPECT_EQ(client_b->stats().state, ConnectionState::kConnected);
}

// A directory of its own, so an ipc:// path in it is one nobody else binds.
std::string fresh_directory() {
    std::string path = (std::filesystem::temp_directory_path() / "kvevents-test-XXXXXX").string();
    EXPECT_NE(::mkdtemp(path.data()), nullptr);
    return path;
}

TEST(ZmqClient, APublisherThatNeverAnswersIsReportedByName) {
    const std::string directory = fresh_directory();
    for (const bool bind : {false, true}) {
        SCOPED_TRACE(bind ? "bind" : "connect");
        test::CapturedLog log;
        RecordingHandler handler;
        ClientOptions o;
        o.pod_key = "pod-a";
        // Connecting: a path nothing binds. Binding: the socket is ours, and no engine comes.
        o.endpoint = "ipc://" + directory + (bind ? "/bound" : "/nobody");
        o.bind = bind;
        o.replay_enabled = false;
        o.start_sequence = std::nullopt;
        o.connect_warning_after = std::chrono::milliseconds(100);
        o.logger = log.logger;
        ZmqClient client(o, handler);
        client.Start();
        ASSERT_TRUE(handler.wait_for_notice(StreamNotice::Kind::kNotConnected));
        // Once: a second would come within another period.
        EXPECT_FALSE(handler.wait_for(
            [](const RecordingHandler& h) {
                const auto all = h.notices();
                return std::count_if(all.begin(), all.end(), [](const auto& n) {
                           return n.kind == StreamNotice::Kind::kNotConnected;
                       }) > 1;
            },
            std::chrono::milliseconds(300)));
        client.Stop();
        const auto notices = handler.notices();
        const auto count = std::count_if(notices.begin(), notices.end(), [](const auto& n) {
            return n.kind == StreamNotice::Kind::kNotConnected;
        });
        EXPECT_EQ(count, 1);
        const auto notice = std::find_if(notices.begin(), notices.end(), [](const auto& n) {
            return n.kind == StreamNotice::Kind::kNotConnected;
        });
        EXPECT_NE(notice->detail.find(o.endpoint), std::string::npos) << notice->detail;
        EXPECT_NE(log.text.str().find(bind ? "no engine has connected to " + o.endpoint
                                           : "no publisher has answered at " + o.endpoint),
                  std::string::npos)
            << log.text.str();
        EXPECT_NE(log.text.str().find("[warning]"), std::string::npos) << log.text.str();
    }
    std::filesystem::remove_all(directory);
}

TEST(ZmqContext, BadOptionsAreNamed) {
    try {
        ZmqContext bad(ZmqContextOptions{0, 1024});
        FAIL() << "io_threads 0 accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("io_threads"), std::string::npos) << e.what();
    }
    EXPECT_THROW(ZmqContext(ZmqContextOptions{1, 0}), std::invalid_argument);
    const ZmqContext good;
    EXPECT_NE(good.handle(), nullptr);
}

}  // namespace
}  // namespace kvevents

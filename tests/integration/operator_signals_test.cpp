// What a gateway and its operators are told about a publisher's state: readiness (kReady and
// ClientStats::ready), one warning per backoff for a replay endpoint that never answers, and
// rate-limited warnings for disconnects.

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/fleet.h>
#include <kvevents/testing/mock_publisher.h>
#include <kvevents/zmq_client.h>

#include "client_fixtures.h"
#include "recording_handler.h"
#include "test_endpoints.h"

namespace kvevents {
namespace {

using namespace std::chrono_literals;
using test::CapturedLog;
using test::options_for;
using test::publish_n;
using test::RecordingHandler;
using test::start_client;
using testing::MockPublisher;
using testing::MockPublisherOptions;
using Kind = StreamNotice::Kind;

// Options for `pub` whose replay backs off `backoff` after each failure, logging into `log`.
ClientOptions backing_off(const MockPublisher& pub,
                          std::chrono::milliseconds backoff,
                          const CapturedLog& log) {
    ClientOptions o = options_for(pub);
    o.replay_backoff_initial = backoff;
    o.replay_backoff_max = backoff;
    o.logger = log.logger;
    return o;
}

std::size_t count_warnings_with(const CapturedLog& log, const std::string& needle) {
    const auto lines = log.lines_with(needle);
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [](const auto& l) {
        return l.find("[warning]") != std::string::npos;
    }));
}

// Records, in call order, "batch N" and "ready", and passes everything on.
class OrderRecorder final : public EventHandler {
public:
    explicit OrderRecorder(RecordingHandler& next) : next_(next) {}
    void on_batch(ReceivedBatch& b) override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            order_.push_back("batch " + std::to_string(b.sequence));
        }
        next_.on_batch(b);
    }
    void on_notice(const StreamNotice& n) override {
        if (n.kind == Kind::kReady) {
            std::lock_guard<std::mutex> lock(mu_);
            order_.emplace_back("ready");
        }
        next_.on_notice(n);
    }
    std::vector<std::string> order() const {
        std::lock_guard<std::mutex> lock(mu_);
        return order_;
    }

private:
    RecordingHandler& next_;
    mutable std::mutex mu_;
    std::vector<std::string> order_;
};

std::vector<StreamNotice> notices_of(const RecordingHandler& h, Kind kind) {
    std::vector<StreamNotice> out;
    for (const StreamNotice& n : h.notices()) {
        if (n.kind == kind)
            out.push_back(n);
    }
    return out;
}

// Binds a fan-in socket "fan-in" without replay on a free loopback port; returns its endpoint.
std::string bind_fan_in(Fleet& fleet) {
    ClientOptions bound;
    bound.pod_key = "fan-in";
    bound.endpoint = "tcp://127.0.0.1:*";
    bound.replay_enabled = false;
    bound.start_sequence = std::nullopt;
    fleet.add_fan_in(bound);
    return fleet.fan_in_endpoint("fan-in");
}

TEST(Readiness, ComesOnceAfterTheStartupHistoryIsDelivered) {
    MockPublisher pub;
    publish_n(pub, 5);  // history only replay can bring
    RecordingHandler recorder;
    OrderRecorder handler(recorder);
    ZmqClient client(options_for(pub), handler);
    EXPECT_FALSE(client.stats().ready);
    client.Start();
    ASSERT_TRUE(recorder.wait_for_notice(Kind::kReady));
    EXPECT_TRUE(client.stats().ready);
    ASSERT_TRUE(pub.wait_for_subscriber(10s));  // connected is not yet subscribed
    publish_n(pub, 2);
    ASSERT_TRUE(recorder.wait_for_batches(7));
    client.Stop();
    EXPECT_EQ(handler.order(),
              (std::vector<std::string>{"batch 0", "batch 1", "batch 2", "batch 3", "batch 4",
                                        "ready", "batch 5", "batch 6"}));
    const auto ready = notices_of(recorder, Kind::kReady);
    ASSERT_EQ(ready.size(), 1U);
    EXPECT_EQ(ready[0].pod_key, "pod-a");
    EXPECT_NE(ready[0].detail.find("history replayed from sequence 0"), std::string::npos)
        << ready[0].detail;
}

TEST(Readiness, WaitsForThePublisherToConnect) {
    const test::FreeEndpoints free = test::unused_endpoints();
    RecordingHandler handler;
    ClientOptions o;
    o.pod_key = "pod-late";
    o.endpoint = free.live;
    o.replay_enabled = false;
    o.reconnect_interval = 20ms;
    o.reconnect_interval_max = 50ms;
    ZmqClient client(o, handler);
    client.Start();
    // Nobody publishes there yet: no notice may claim readiness.
    EXPECT_FALSE(handler.wait_for_notice(Kind::kReady, 300ms));
    EXPECT_FALSE(client.stats().ready);
    MockPublisherOptions po;
    po.endpoint = free.live;
    po.replay_endpoint.clear();
    MockPublisher pub(po);
    ASSERT_TRUE(handler.wait_for_notice(Kind::kReady));
    EXPECT_TRUE(client.stats().ready);
    client.Stop();
    const auto ready = notices_of(handler, Kind::kReady);
    ASSERT_EQ(ready.size(), 1U);
    EXPECT_NE(ready[0].detail.find("replay is off"), std::string::npos) << ready[0].detail;
}

TEST(Readiness, FollowsAFailedStartupReplayAndSaysTheHistoryIsUnknown) {
    MockPublisher pub;
    pub.set_replay_enabled(false);
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.replay_backoff_initial = 1min;  // one failed replay in this test
    o.replay_backoff_max = 1min;
    auto client = start_client(pub, handler, o);
    ASSERT_TRUE(handler.wait_for_notice(Kind::kReady));
    client->Stop();
    const auto ready = notices_of(handler, Kind::kReady);
    ASSERT_EQ(ready.size(), 1U);
    EXPECT_NE(ready[0].detail.find("start-up replay failed (no answer from " +
                                   pub.replay_endpoint() + ")"),
              std::string::npos)
        << ready[0].detail;
    EXPECT_TRUE(client->stats().ready);
}

TEST(Readiness, EachFleetPublisherAndFanInStreamBecomesReady) {
    MockPublisher pub_a;
    MockPublisher pub_b;
    publish_n(pub_a, 3);
    RecordingHandler handler;
    Fleet fleet(FleetOptions{}, handler);
    ClientOptions a = options_for(pub_a);
    ClientOptions b = options_for(pub_b);
    b.pod_key = "pod-b";
    fleet.add(a);
    fleet.add(b);
    ASSERT_TRUE(handler.wait_for(
        [](const RecordingHandler& h) { return notices_of(h, Kind::kReady).size() == 2; }));
    for (const PublisherStatus& p : fleet.publishers()) EXPECT_TRUE(p.stats.ready) << p.pod_key;

    // A fan-in socket is no publisher: only the streams behind it become ready.
    RecordingHandler fan_in_handler;
    Fleet fan_in(FleetOptions{}, fan_in_handler);
    MockPublisherOptions engine = test::connecting_to(bind_fan_in(fan_in));
    engine.topic = "kv@10.0.0.9@m";
    MockPublisher pub_c(engine);
    ASSERT_TRUE(pub_c.wait_for_subscriber(10s));
    publish_n(pub_c, 1);
    ASSERT_TRUE(fan_in_handler.wait_for_notice(Kind::kReady));
    ASSERT_TRUE(fan_in_handler.wait_for_batches(1));
    fan_in.stop();
    const auto ready = notices_of(fan_in_handler, Kind::kReady);
    ASSERT_EQ(ready.size(), 1U);
    EXPECT_EQ(ready[0].pod_key, "10.0.0.9");
}

TEST(OperatorWarnings, ASilentReplayEndpointIsNamedOncePerBackoffNotByEveryLoss) {
    CapturedLog log;
    MockPublisher pub;
    pub.set_replay_enabled(false);
    RecordingHandler handler;
    auto client = start_client(pub, handler, backing_off(pub, 200ms, log));
    pub.drop_live({1, 3});
    publish_n(pub, 5);  // gaps the silent endpoint cannot heal
    ASSERT_TRUE(handler.wait_for(
        [&](const RecordingHandler&) { return client->stats().replays_failed >= 3; }));
    client->Stop();
    const ClientStats s = client->stats();
    // One warning per failed request: each starts one backoff.
    const auto silent = log.lines_with("did not answer");
    EXPECT_EQ(silent.size(), s.replays_failed) << log.text.str();
    ASSERT_FALSE(silent.empty());
    EXPECT_NE(silent[0].find("[warning]"), std::string::npos);
    EXPECT_NE(silent[0].find(pub.replay_endpoint()), std::string::npos) << silent[0];
    EXPECT_NE(silent[0].find("replay_endpoint"), std::string::npos) << silent[0];
    // The losses are announced to the handler and counted, but not warned about one by one.
    EXPECT_GE(handler.count(Kind::kContinuityLost) + handler.count(Kind::kUnrecoverableGap), 1U);
    EXPECT_EQ(count_warnings_with(log, "lost for good"), 0U) << log.text.str();
    EXPECT_EQ(count_warnings_with(log, "cannot prove"), 0U) << log.text.str();
    EXPECT_EQ(count_warnings_with(log, "sequence gap"), 0U) << log.text.str();
}

TEST(OperatorWarnings, LossesWarnAgainOnceTheReplayEndpointAnswers) {
    CapturedLog log;
    MockPublisherOptions po;
    po.buffer_steps = 5;  // a gap longer than this is lost although replay answers
    MockPublisher pub(po);
    pub.set_replay_enabled(false);
    RecordingHandler handler;
    auto client = start_client(pub, handler, backing_off(pub, 100ms, log));
    ASSERT_TRUE(handler.wait_for(
        [&](const RecordingHandler&) { return client->stats().replays_failed >= 1; }));
    pub.set_replay_enabled(true);
    ASSERT_TRUE(handler.wait_for(
        [&](const RecordingHandler&) { return client->stats().replays_completed >= 1; }));
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(1));
    std::set<std::uint64_t> dropped;
    for (std::uint64_t s = 1; s <= 10; ++s) dropped.insert(s);
    pub.drop_live(dropped);
    publish_n(pub, 11);
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        return h.count(Kind::kUnrecoverableGap) + h.count(Kind::kContinuityLost) >= 1 &&
               h.batch_count() >= 2;
    }));
    client->Stop();
    EXPECT_GE(count_warnings_with(log, "lost for good") + count_warnings_with(log, "cannot prove"),
              1U)
        << log.text.str();
}

TEST(OperatorWarnings, DisconnectsWarnButAFlappingPublisherIsRateLimited) {
    CapturedLog log;
    MockPublisher pub;
    RecordingHandler handler;
    ClientOptions o = options_for(pub);
    o.start_sequence = std::nullopt;
    o.logger = log.logger;
    auto client = start_client(pub, handler, o);
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected));
    for (std::size_t flap = 1; flap <= 3; ++flap) {
        pub.close();
        ASSERT_TRUE(handler.wait_for_state(ConnectionState::kDisconnected, flap));
        pub.reopen(/*keep_history=*/true);
        ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected, flap + 1));
    }
    client->Stop();
    const auto lines = log.lines_with("disconnected from");
    ASSERT_EQ(lines.size(), 1U) << log.text.str();  // three within the 10 s window
    EXPECT_NE(lines[0].find("[warning]"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("pod-a"), std::string::npos) << lines[0];
    EXPECT_EQ(client->stats().reconnects, 3U);
}

// The bound socket's own stream warns when an engine goes; its topics' streams do not repeat it.
TEST(OperatorWarnings, AFanInDisconnectWarnsOnceNotOncePerTopic) {
    CapturedLog log;
    RecordingHandler handler;
    FleetOptions fo;
    fo.logger = log.logger;
    Fleet fleet(fo, handler);
    const std::string endpoint = bind_fan_in(fleet);
    {
        MockPublisherOptions engine = test::connecting_to(endpoint);
        engine.topic = "kv@10.0.0.1@m";
        MockPublisher one(engine);
        engine.topic = "kv@10.0.0.2@m";
        MockPublisher two(engine);
        ASSERT_TRUE(one.wait_for_subscriber(10s));
        ASSERT_TRUE(two.wait_for_subscriber(10s));
        publish_n(one, 1);
        publish_n(two, 1);
        ASSERT_TRUE(handler.wait_for_batches(2));
    }  // both engines go
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        std::size_t topic_streams_down = 0;
        for (const StreamNotice& n : h.notices()) {
            if (n.kind == Kind::kConnectionChanged && n.state == ConnectionState::kDisconnected &&
                n.pod_key != "fan-in")
                ++topic_streams_down;
        }
        return topic_streams_down >= 2;
    }));
    fleet.stop();
    EXPECT_EQ(count_warnings_with(log, "disconnected from"), 1U) << log.text.str();
}

// libzmq resolves a host name when it connects, and again on every reconnect: a name that does not
// resolve is no error (the pod may appear in DNS later), but it is said once, by name.
TEST(OperatorWarnings, AHostThatDoesNotResolveIsNamed) {
    const std::string endpoint = "tcp://kvevents-no-such-host.invalid:5557";
    CapturedLog client_log;
    {
        RecordingHandler handler;
        ClientOptions o;
        o.pod_key = "pod-dns";
        o.endpoint = endpoint;
        o.replay_enabled = false;
        o.logger = client_log.logger;
        ZmqClient client(o, handler);
        client.Start();
        client.Stop();
    }
    CapturedLog fleet_log;
    {
        RecordingHandler handler;
        FleetOptions fo;
        fo.logger = fleet_log.logger;
        Fleet fleet(fo, handler);
        ClientOptions o;
        o.pod_key = "pod-dns";
        o.pod_ip = "kvevents-no-such-host.invalid";
        fleet.add(o);
        fleet.stop();
    }
    for (const CapturedLog* log : {&client_log, &fleet_log}) {
        const auto lines = log->lines_with("host 'kvevents-no-such-host.invalid'");
        ASSERT_FALSE(lines.empty()) << log->text.str();
        EXPECT_NE(lines[0].find("[warning]"), std::string::npos) << lines[0];
        EXPECT_NE(lines[0].find("does not resolve"), std::string::npos) << lines[0];
    }
    EXPECT_EQ(fleet_log.lines_with("does not resolve").size(), 2U)  // live and replay
        << fleet_log.text.str();
    // A name that resolves, or an IP literal, says nothing.
    CapturedLog quiet;
    {
        RecordingHandler handler;
        ClientOptions o;
        o.pod_key = "pod-local";
        o.endpoint = "tcp://localhost:5557";
        o.replay_endpoint = "tcp://127.0.0.1:5558";
        o.logger = quiet.logger;
        ZmqClient client(o, handler);
        client.Start();
        client.Stop();
    }
    EXPECT_TRUE(quiet.lines_with("does not resolve").empty()) << quiet.text.str();
}

}  // namespace
}  // namespace kvevents

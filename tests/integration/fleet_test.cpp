#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/fleet.h>
#include <kvevents/testing/mock_publisher.h>

#include "client_fixtures.h"
#include "pod_recorder.h"
#include "test_endpoints.h"

namespace kvevents::test {
namespace {

using namespace std::chrono_literals;
using Kind = StreamNotice::Kind;

FleetOptions small_fleet(std::size_t loops = 2) {
    FleetOptions o;
    o.loop_threads = loops;
    o.planned_publishers = 16;
    return o;
}

ClientOptions pod_options(const testing::MockPublisher& pub, const std::string& key) {
    ClientOptions o = options_for(pub);
    o.pod_key = key;
    return o;
}

std::string pod_name(std::size_t i) {
    return "pod-" + std::to_string(i);
}

bool no_trouble(const PodLog& log) {
    return log.count(Kind::kPublisherRestarted) == 0 && log.count(Kind::kUnrecoverableGap) == 0 &&
           log.count(Kind::kContinuityLost) == 0 && log.count(Kind::kDecodeError) == 0;
}

struct Pods {
    explicit Pods(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            pubs.push_back(std::make_unique<testing::MockPublisher>());
    }
    std::vector<std::unique_ptr<testing::MockPublisher>> pubs;
};

// Each test of following publishers runs twice: read by the fleet's own ZMTP reader, and
// through libzmq SUB sockets.
class FleetReadPath : public ::testing::TestWithParam<bool> {
protected:
    FleetOptions small_fleet(std::size_t loops = 2) const {
        FleetOptions o = test::small_fleet(loops);
        o.read_tcp_directly = GetParam();
        return o;
    }
};

INSTANTIATE_TEST_SUITE_P(Fleet,
                         FleetReadPath,
                         ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                             return std::string(param_info.param ? "ZmtpReader" : "Libzmq");
                         });

TEST_P(FleetReadPath, ManyPublishersOnFewLoopsGetEveryBatchInOrderWithCallsThatNeverOverlap) {
    constexpr std::size_t kPods = 24;
    constexpr std::uint64_t kBatches = 40;
    Pods pods(kPods);
    PodRecorder handler;
    Fleet fleet(small_fleet(), handler);
    EXPECT_EQ(fleet.loop_threads(), 2U);
    for (std::size_t i = 0; i < kPods; ++i)
        EXPECT_EQ(fleet.add(pod_options(*pods.pubs[i], pod_name(i))), AddOutcome::kAdded);
    for (auto& pub : pods.pubs) ASSERT_TRUE(pub->wait_for_subscriber(10s));
    for (std::uint64_t b = 0; b < kBatches; ++b)
        for (auto& pub : pods.pubs) publish_n(*pub, 1);
    ASSERT_TRUE(handler.wait_for([&](const PodRecorder& h) {
        for (std::size_t i = 0; i < kPods; ++i)
            if (h.pod(pod_name(i)).sequences.size() < kBatches)
                return false;
        return true;
    }));
    for (std::size_t i = 0; i < kPods; ++i) {
        const PodLog log = handler.snapshot(pod_name(i));
        EXPECT_TRUE(log.contiguous_from_zero(kBatches)) << pod_name(i);
        EXPECT_TRUE(no_trouble(log)) << pod_name(i);
        EXPECT_EQ(log.model_name, "model-x");
    }
    EXPECT_FALSE(handler.overlapped());
    const FleetStats stats = fleet.stats();
    EXPECT_EQ(stats.publishers, kPods);
    EXPECT_EQ(stats.connected, kPods);
    EXPECT_EQ(stats.totals.batches, kPods * kBatches);
    EXPECT_EQ(stats.totals.batches_unrecoverable, 0U);
    const auto listed = fleet.publishers();
    ASSERT_EQ(listed.size(), kPods);
    EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end(),
                               [](const auto& a, const auto& b) { return a.pod_key < b.pod_key; }));
    EXPECT_EQ(listed.front().stats.state, ConnectionState::kConnected);
}

TEST_P(FleetReadPath, AddingTheSameSettingsDoesNothingAndChangedSettingsReplaceTheSubscription) {
    testing::MockPublisher pub;
    testing::MockPublisher other;
    PodRecorder handler;
    Fleet fleet(small_fleet(1), handler);
    ClientOptions o = pod_options(pub, "pod-a");
    EXPECT_EQ(fleet.add(o), AddOutcome::kAdded);
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for(
        [](const PodRecorder& h) { return h.pod("pod-a").sequences.size() == 3; }));
    EXPECT_EQ(fleet.add(o), AddOutcome::kUnchanged);
    EXPECT_EQ(fleet.publishers().size(), 1U);

    // Now the same key points at another engine: the old subscription goes, the new one
    // fetches its history from the start.
    publish_n(other, 5);
    ClientOptions moved = pod_options(other, "pod-a");
    EXPECT_EQ(fleet.add(moved), AddOutcome::kReplaced);
    ASSERT_TRUE(other.wait_for_subscriber(10s));
    ASSERT_TRUE(handler.wait_for(
        [](const PodRecorder& h) { return h.pod("pod-a").sequences.size() == 8; }));
    const PodLog log = handler.snapshot("pod-a");
    EXPECT_EQ(log.sequences, (std::vector<std::uint64_t>{0, 1, 2, 0, 1, 2, 3, 4}));
    publish_n(pub, 1);  // the old engine is not followed any more
    publish_n(other, 1);
    ASSERT_TRUE(handler.wait_for(
        [](const PodRecorder& h) { return h.pod("pod-a").sequences.size() == 9; }));
    EXPECT_EQ(handler.snapshot("pod-a").sequences.back(), 5U);
    ASSERT_EQ(fleet.publishers().size(), 1U);
    EXPECT_EQ(fleet.publishers()[0].endpoint, other.endpoint());
}

TEST_P(FleetReadPath, PodsAddedAndRemovedDuringTrafficNeverDisturbTheOthers) {
    constexpr std::size_t kSteady = 6;
    constexpr std::size_t kChurned = 6;
    Pods steady(kSteady);
    Pods churned(kChurned);
    PodRecorder handler;
    Fleet fleet(small_fleet(), handler);
    for (std::size_t i = 0; i < kSteady; ++i)
        fleet.add(pod_options(*steady.pubs[i], "steady-" + std::to_string(i)));
    for (auto& pub : steady.pubs) ASSERT_TRUE(pub->wait_for_subscriber(10s));

    // Removed pods must get no call once remove() has returned.
    std::atomic<int> removed_upto{-1};
    std::atomic<bool> late_call{false};
    handler.before_batch = [&](const ReceivedBatch& b) {
        if (b.pod_key.rfind("churn-", 0) != 0)
            return;
        const int index = std::stoi(b.pod_key.substr(6));
        if (index <= removed_upto)
            late_call = true;
    };

    std::atomic<bool> publishing{true};
    std::atomic<std::uint64_t> published{0};
    std::thread publisher([&] {
        while (publishing) {
            for (auto& pub : steady.pubs) publish_n(*pub, 1);
            ++published;
            for (auto& pub : churned.pubs) publish_n(*pub, 1);
            std::this_thread::yield();
        }
    });
    for (std::size_t i = 0; i < kChurned; ++i) {
        EXPECT_EQ(fleet.add(pod_options(*churned.pubs[i], "churn-" + std::to_string(i))),
                  AddOutcome::kAdded);
        ASSERT_TRUE(handler.wait_for([&](const PodRecorder& h) {
            return !h.pod("churn-" + std::to_string(i)).sequences.empty();
        }));
    }
    for (std::size_t i = 0; i < kChurned; ++i) {
        EXPECT_TRUE(fleet.remove("churn-" + std::to_string(i)));
        removed_upto = static_cast<int>(i);
    }
    EXPECT_FALSE(fleet.remove("churn-0"));
    const std::uint64_t target = published + 50;
    ASSERT_TRUE(handler.wait_for([&](const PodRecorder&) { return published >= target; }));
    publishing = false;
    publisher.join();
    const std::uint64_t total = published;
    ASSERT_TRUE(handler.wait_for([&](const PodRecorder& h) {
        for (std::size_t i = 0; i < kSteady; ++i)
            if (h.pod("steady-" + std::to_string(i)).sequences.size() < total)
                return false;
        return true;
    }));
    for (std::size_t i = 0; i < kSteady; ++i) {
        const PodLog log = handler.snapshot("steady-" + std::to_string(i));
        EXPECT_TRUE(log.contiguous_from_zero(total)) << i;
        EXPECT_TRUE(no_trouble(log)) << i;
    }
    EXPECT_FALSE(late_call);
    EXPECT_FALSE(handler.overlapped());
    EXPECT_EQ(fleet.publishers().size(), kSteady);
}

TEST_P(FleetReadPath, APublisherRemovedFromItsOwnHandlerGetsNoFurtherCall) {
    testing::MockPublisher pub;
    PodRecorder handler;
    Fleet fleet(small_fleet(1), handler);
    std::atomic<int> after_removal{0};
    std::atomic<bool> removed{false};
    handler.before_batch = [&](const ReceivedBatch& b) {
        if (removed)
            ++after_removal;
        if (b.sequence == 4) {
            EXPECT_TRUE(fleet.remove("pod-a"));
            removed = true;
        }
    };
    fleet.add(pod_options(pub, "pod-a"));
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 20);
    // Batch 4 is recorded after its handler call removed the pod.
    ASSERT_TRUE(handler.wait_for([&](const PodRecorder& h) {
        return h.pod("pod-a").sequences.size() >= 5 && fleet.publishers().empty();
    }));
    fleet.stop();  // joins the loops: a call that should not have happened has happened by now
    EXPECT_EQ(after_removal, 0);
    EXPECT_EQ(handler.snapshot("pod-a").sequences.size(), 5U);
}

// Two publishers on consecutive ports, as vLLM offsets a pod's data-parallel ranks.
std::pair<std::unique_ptr<testing::MockPublisher>, std::unique_ptr<testing::MockPublisher>>
consecutive_publishers() {
    for (int attempt = 0; attempt < 50; ++attempt) {
        auto first = std::make_unique<testing::MockPublisher>();
        const std::string live = first->endpoint();
        const std::string replay = first->replay_endpoint();
        const auto port_of = [](const std::string& e) {
            return std::stoi(e.substr(e.rfind(':') + 1));
        };
        testing::MockPublisherOptions o;
        o.endpoint = "tcp://127.0.0.1:" + std::to_string(port_of(live) + 1);
        o.replay_endpoint = "tcp://127.0.0.1:" + std::to_string(port_of(replay) + 1);
        try {
            auto second = std::make_unique<testing::MockPublisher>(o);
            return {std::move(first), std::move(second)};
        } catch (const std::exception&) {
            // the next port was taken: try other ports
        }
    }
    ADD_FAILURE() << "no two consecutive free ports found";
    return {};
}

TEST_P(FleetReadPath, APodWithTwoDataParallelRanksIsTwoPublishersOnOffsetPorts) {
    auto [rank0, rank1] = consecutive_publishers();
    ASSERT_TRUE(rank0 && rank1);
    PodRecorder handler;
    Fleet fleet(small_fleet(), handler);
    const auto outcomes = fleet.add_pod(pod_options(*rank0, "pod-a"), 2);
    EXPECT_EQ(outcomes, (std::vector<AddOutcome>{AddOutcome::kAdded, AddOutcome::kAdded}));
    ASSERT_TRUE(rank0->wait_for_subscriber(10s));
    ASSERT_TRUE(rank1->wait_for_subscriber(10s));
    publish_n(*rank0, 3);
    publish_n(*rank1, 5);
    ASSERT_TRUE(handler.wait_for([](const PodRecorder& h) {
        return h.pod("pod-a", 0).sequences.size() == 3 && h.pod("pod-a", 1).sequences.size() == 5;
    })) << handler.snapshot("pod-a", 0).sequences.size()
        << " " << handler.snapshot("pod-a", 1).sequences.size() << " "
        << handler.snapshot("pod-a", 1).notices.size();
    EXPECT_TRUE(handler.snapshot("pod-a", 1).contiguous_from_zero(5));
    ASSERT_TRUE(fleet.publisher("pod-a", 1).has_value());
    EXPECT_EQ(fleet.publisher("pod-a", 1)->endpoint, rank1->endpoint());

    // The pod shrinks to one rank: rank 1 is removed.
    EXPECT_EQ(fleet.add_pod(pod_options(*rank0, "pod-a"), 1),
              std::vector<AddOutcome>{AddOutcome::kUnchanged});
    EXPECT_FALSE(fleet.publisher("pod-a", 1).has_value());
    EXPECT_EQ(fleet.remove_pod("pod-a"), 1U);
    EXPECT_TRUE(fleet.publishers().empty());
}

TEST_P(FleetReadPath, AtMostKReplaysRunAtOnceAndEveryHistoryIsRecovered) {
    constexpr std::size_t kPods = 8;
    constexpr std::uint64_t kHistory = 400;
    Pods pods(kPods);
    for (auto& pub : pods.pubs) {
        publish_n(*pub, kHistory);
        pub->set_replay_enabled(false);  // the first replays hold their turns until they time out
    }
    PodRecorder handler;
    FleetOptions options = small_fleet();
    options.max_concurrent_replays = 2;
    Fleet fleet(options, handler);
    for (std::size_t i = 0; i < kPods; ++i) {
        ClientOptions o = pod_options(*pods.pubs[i], pod_name(i));
        o.replay_idle_timeout = 1s;
        fleet.add(o);
    }
    ASSERT_TRUE(handler.wait_for([&](const PodRecorder&) {
        const FleetStats s = fleet.stats();
        return s.replays_running + s.replays_waiting == kPods;
    }));
    const FleetStats queued = fleet.stats();
    EXPECT_EQ(queued.replays_running, 2U);
    EXPECT_EQ(queued.replays_waiting, kPods - 2);

    std::atomic<std::size_t> most_running{0};
    handler.before_batch = [&](const ReceivedBatch&) {
        most_running = std::max<std::size_t>(most_running, fleet.stats().replays_running);
    };
    for (auto& pub : pods.pubs) pub->set_replay_enabled(true);
    ASSERT_TRUE(handler.wait_for(
        [&](const PodRecorder& h) {
            for (std::size_t i = 0; i < kPods; ++i)
                if (h.pod(pod_name(i)).sequences.size() < kHistory)
                    return false;
            return true;
        },
        60s));
    for (std::size_t i = 0; i < kPods; ++i) {
        const PodLog log = handler.snapshot(pod_name(i));
        EXPECT_TRUE(log.contiguous_from_zero(kHistory)) << pod_name(i);
        EXPECT_TRUE(no_trouble(log)) << pod_name(i);
    }
    EXPECT_LE(most_running, 2U);
    ASSERT_TRUE(handler.wait_for([&](const PodRecorder&) {
        const FleetStats s = fleet.stats();
        return s.replays_running == 0 && s.replays_waiting == 0;
    }));
}

TEST(Fleet, TheMemoryBudgetSizesEachPublishersQueues) {
    testing::MockPublisher pub;
    PodRecorder handler;
    FleetOptions options = small_fleet(1);
    options.memory_budget_bytes = 16 << 20;
    options.batch_bytes_estimate = 2048;
    options.planned_publishers = 10;
    Fleet fleet(options, handler);
    fleet.add(pod_options(pub, "pod-a"));
    const auto status = fleet.publisher("pod-a");
    ASSERT_TRUE(status.has_value());
    const std::size_t share = (16U << 20) / 10;
    EXPECT_EQ(status->receive_hwm, static_cast<int>(share / (4 * 2048)));
    EXPECT_EQ(status->max_buffered_batches, share / (2 * 2048));

    options.memory_budget_bytes = 1 << 20;
    EXPECT_THROW(Fleet(options, handler), std::invalid_argument);
}

TEST(Fleet, BadOptionsAndUnusableEndpointsAreErrorsThatNameTheProblem) {
    PodRecorder handler;
    FleetOptions bad = small_fleet();
    bad.max_concurrent_replays = 0;
    try {
        Fleet fleet(bad, handler);
        ADD_FAILURE() << "no error";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("max_concurrent_replays"), std::string::npos);
    }
    Fleet fleet(small_fleet(), handler);
    ClientOptions o;
    o.pod_key = "pod-a";
    o.endpoint = "tcp://127.0.0.1:*";
    o.bind = true;
    fleet.add_fan_in(o);
    ClientOptions clash = o;
    clash.pod_key = "pod-b";
    clash.endpoint = fleet.fan_in_endpoint("pod-a");
    try {
        fleet.add_fan_in(clash);
        ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(clash.endpoint), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fleet.publisher("pod-b").has_value());
    EXPECT_THROW(fleet.add_pod(o, 0), std::invalid_argument);
    EXPECT_THROW(fleet.add_fan_in(o, 70000), std::invalid_argument);
}

TEST_P(FleetReadPath, APublisherThatNeverConnectsGetsANoticeNamingItsEndpoint) {
    const FreeEndpoints free = unused_endpoints();
    PodRecorder handler;
    Fleet fleet(small_fleet(), handler);
    ClientOptions o;
    o.pod_key = "pod-a";
    o.endpoint = free.live;
    o.replay_enabled = false;
    o.connect_warning_after = 100ms;
    fleet.add(o);
    ASSERT_TRUE(handler.wait_for(
        [](const PodRecorder& h) { return h.pod("pod-a").count(Kind::kNotConnected) == 1; }));
    EXPECT_EQ(fleet.publisher("pod-a")->stats.state, ConnectionState::kConnecting);
    EXPECT_EQ(fleet.stats().connecting, 1U);
}

TEST_P(FleetReadPath, APublisherThatComesBackOnItsPortsIsFollowedAgainAsARestart) {
    testing::MockPublisher pub;
    PodRecorder handler;
    Fleet fleet(small_fleet(1), handler);
    fleet.add(pod_options(pub, "pod-a"));
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for(
        [](const PodRecorder& h) { return h.pod("pod-a").sequences.size() == 3; }));
    pub.close();
    ASSERT_TRUE(handler.wait_for([&fleet](const PodRecorder&) {
        return fleet.publisher("pod-a")->stats.state == ConnectionState::kDisconnected;
    }));
    pub.reopen(/*keep_history=*/false);
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 2, 1);
    ASSERT_TRUE(handler.wait_for([](const PodRecorder& h) {
        const PodLog& log = h.pod("pod-a");
        return log.count(Kind::kPublisherRestarted) == 1 && log.sequences.size() == 5;
    }));
    EXPECT_EQ(handler.snapshot("pod-a").sequences, (std::vector<std::uint64_t>{0, 1, 2, 0, 1}));
    EXPECT_EQ(fleet.publisher("pod-a")->stats.reconnects, 1U);
}

TEST(FanInTopic, SplitsTheKvConventionAndKeepsAnyOtherTopicWhole) {
    const FanInTopic a = parse_fan_in_topic("kv@10.0.0.7@meta-llama/Llama-3.1-8B");
    EXPECT_EQ(a.pod, "10.0.0.7");
    EXPECT_EQ(a.model, "meta-llama/Llama-3.1-8B");
    const FanInTopic b = parse_fan_in_topic("kv@pod-b@m@x");
    EXPECT_EQ(b.pod, "pod-b");
    EXPECT_EQ(b.model, "m@x");
    for (const char* other : {"", "kv", "kv@", "kv@@m", "kv@pod", "kv@pod@", "engine-3"}) {
        const FanInTopic t = parse_fan_in_topic(other);
        EXPECT_EQ(t.pod, other);
        EXPECT_FALSE(t.model.has_value()) << other;
    }
}

// Several engines connect out to one bound socket, each naming its pod in the topic.
struct FanIn {
    explicit FanIn(Fleet& fleet, std::optional<int> replay_port = std::nullopt) {
        ClientOptions o;
        o.pod_key = "gateway";
        o.model_name = "fallback-model";
        o.endpoint = "tcp://127.0.0.1:*";
        o.replay_idle_timeout = 300ms;
        o.replay_backoff_initial = 300ms;
        EXPECT_EQ(fleet.add_fan_in(o, replay_port), AddOutcome::kAdded);
        endpoint = fleet.fan_in_endpoint("gateway");
    }
    std::unique_ptr<testing::MockPublisher> engine(const std::string& topic,
                                                   std::string replay_endpoint = {}) const {
        testing::MockPublisherOptions o = connecting_to(endpoint);
        o.topic = topic;
        o.replay_endpoint = std::move(replay_endpoint);
        return std::make_unique<testing::MockPublisher>(o);
    }
    std::string endpoint;
};

TEST(Fleet, FanInFollowsEachTopicAsItsOwnStreamWithNoFalseRestartsOrLosses) {
    PodRecorder handler;
    Fleet fleet(small_fleet(), handler);
    FanIn fan_in(fleet);
    auto a = fan_in.engine("kv@10.0.0.1@llama");
    auto b = fan_in.engine("kv@10.0.0.2@llama");
    auto c = fan_in.engine("engine-c");
    for (auto* e : {a.get(), b.get(), c.get()}) ASSERT_TRUE(e->wait_for_subscriber(10s));
    for (int round = 0; round < 100; ++round) {
        publish_n(*a, 1);
        publish_n(*b, 2);
        if (round % 3 == 0)
            publish_n(*c, 1);
    }
    ASSERT_TRUE(handler.wait_for([](const PodRecorder& h) {
        return h.pod("10.0.0.1").sequences.size() == 100 &&
               h.pod("10.0.0.2").sequences.size() == 200 &&
               h.pod("engine-c").sequences.size() == 34;
    }));
    EXPECT_TRUE(handler.snapshot("10.0.0.1").contiguous_from_zero(100));
    EXPECT_TRUE(handler.snapshot("10.0.0.2").contiguous_from_zero(200));
    EXPECT_TRUE(handler.snapshot("engine-c").contiguous_from_zero(34));
    for (const char* pod : {"10.0.0.1", "10.0.0.2", "engine-c"})
        EXPECT_TRUE(no_trouble(handler.snapshot(pod))) << pod;
    EXPECT_EQ(handler.snapshot("10.0.0.1").model_name, "llama");
    EXPECT_EQ(handler.snapshot("engine-c").model_name, "fallback-model");

    // One engine restarts: its pod, and only its pod, is told.
    b->restart();
    publish_n(*b, 3);
    publish_n(*a, 1);
    ASSERT_TRUE(handler.wait_for([](const PodRecorder& h) {
        return h.pod("10.0.0.2").sequences.size() == 203 &&
               h.pod("10.0.0.1").sequences.size() == 101;
    }));
    const PodLog b_log = handler.snapshot("10.0.0.2");
    EXPECT_EQ(b_log.count(Kind::kPublisherRestarted) + b_log.count(Kind::kContinuityLost), 1U);
    EXPECT_TRUE(no_trouble(handler.snapshot("10.0.0.1")));
    EXPECT_TRUE(no_trouble(handler.snapshot("engine-c")));

    const auto listed = fleet.publishers();
    ASSERT_EQ(listed.size(), 4U);  // the socket itself and three streams
    const auto stream = fleet.publisher("10.0.0.1");
    ASSERT_TRUE(stream.has_value());
    EXPECT_TRUE(stream->fan_in);
    EXPECT_EQ(stream->topic, "kv@10.0.0.1@llama");
    EXPECT_EQ(stream->stats.state, ConnectionState::kConnected);
    EXPECT_EQ(stream->stats.batches, 101U);
    EXPECT_EQ(fleet.remove_pod("gateway"), 1U);
    EXPECT_TRUE(fleet.publishers().empty());
}

TEST(Fleet, FanInStreamsHealGapsFromTheReplayPortAtThePodAddressInTheirTopic) {
    // Two engines on different loopback addresses, with their replay ROUTERs on one port.
    testing::MockPublisherOptions probe_options;
    probe_options.replay_endpoint = "tcp://127.0.0.2:*";
    auto probe = std::make_unique<testing::MockPublisher>(probe_options);
    const std::string replay = probe->replay_endpoint();
    const int port = std::stoi(replay.substr(replay.rfind(':') + 1));
    probe.reset();

    PodRecorder handler;
    Fleet fleet(small_fleet(), handler);
    FanIn fan_in(fleet, port);
    auto a = fan_in.engine("kv@127.0.0.2@m", "tcp://127.0.0.2:" + std::to_string(port));
    auto b = fan_in.engine("kv@127.0.0.3@m", "tcp://127.0.0.3:" + std::to_string(port));
    ASSERT_TRUE(a->wait_for_subscriber(10s));
    ASSERT_TRUE(b->wait_for_subscriber(10s));
    a->drop_live({3, 4});
    b->drop_live({7});
    publish_n(*a, 10);
    publish_n(*b, 10);
    ASSERT_TRUE(handler.wait_for([](const PodRecorder& h) {
        return h.pod("127.0.0.2").sequences.size() == 10 &&
               h.pod("127.0.0.3").sequences.size() == 10;
    }));
    EXPECT_TRUE(handler.snapshot("127.0.0.2").contiguous_from_zero(10));
    EXPECT_TRUE(handler.snapshot("127.0.0.3").contiguous_from_zero(10));
    EXPECT_TRUE(no_trouble(handler.snapshot("127.0.0.2")));
    EXPECT_GE(fleet.publisher("127.0.0.2")->stats.batches_recovered, 2U);
    EXPECT_EQ(fleet.publisher("127.0.0.3")->replay_endpoint,
              "tcp://127.0.0.3:" + std::to_string(port));
}

TEST(Fleet, AFanInSocketFollowsAtMostTheConfiguredNumberOfTopics) {
    PodRecorder handler;
    FleetOptions options = small_fleet(1);
    options.max_fan_in_streams = 2;
    Fleet fleet(options, handler);
    FanIn fan_in(fleet);
    std::vector<std::unique_ptr<testing::MockPublisher>> engines;
    for (int i = 0; i < 3; ++i) {
        engines.push_back(fan_in.engine("engine-" + std::to_string(i)));
        ASSERT_TRUE(engines.back()->wait_for_subscriber(10s));
        publish_n(*engines.back(), 1);
        ASSERT_TRUE(handler.wait_for([&](const PodRecorder&) {
            const auto socket = fleet.publisher("gateway");
            return i < 2 ? fleet.publisher("engine-" + std::to_string(i)).has_value()
                         : socket && socket->stats.decode_errors == 1;
        }));
    }
    EXPECT_EQ(fleet.publishers().size(), 3U);  // the socket and two streams
}

}  // namespace
}  // namespace kvevents::test

// kvevents::prometheus served by a real prometheus-cpp Exposer, scraped over HTTP and parsed.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <kvevents/prometheus.h>
#include <kvevents/testing/mock_publisher.h>

#include "../integration/client_fixtures.h"
#include "../integration/metrics_text.h"

namespace kvevents::test {
namespace {

// A client calling `handler` (the lag observer), subscribed before it returns.
std::unique_ptr<ZmqClient> start_observed(testing::MockPublisher& pub,
                                          EventHandler& handler,
                                          const ClientOptions& options) {
    auto client = std::make_unique<ZmqClient>(options, handler);
    client->Start();
    EXPECT_TRUE(pub.wait_for_subscriber(std::chrono::seconds(10)));
    return client;
}

TEST(PrometheusMetrics, AScrapeReportsEachClientsCountersStateAndLag) {
    ::prometheus::Exposer exposer("127.0.0.1:0");
    auto metrics = std::make_shared<prometheus::ClientMetrics>();
    exposer.RegisterCollectable(metrics);
    const int port = exposer.GetListeningPorts().at(0);

    testing::MockPublisher pub;
    RecordingHandler handler;
    ClientOptions options = options_for(pub);
    options.start_sequence = std::nullopt;
    auto observed = metrics->lag_observer(handler, options);
    auto client = start_observed(pub, *observed, options);
    metrics->track(*client);
    for (std::uint64_t i = 0; i < 3; ++i) {
        EventBatch batch = one_store(i);
        batch.ts =
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                .count();  // a real lag to observe
        pub.publish(batch);
    }
    ASSERT_TRUE(handler.wait_for_batches(3));
    ASSERT_TRUE(handler.wait_for([&](const RecordingHandler&) {
        return client->stats().state == ConnectionState::kConnected && client->stats().ready;
    }));

    const std::string labels = R"({model="model-x",pod="pod-a",rank="0")";
    const auto samples = parse_samples(scrape(port));
    EXPECT_EQ(value_of(samples, "kvevents_batches_total" + labels + "}"), 3.0);
    EXPECT_EQ(value_of(samples, "kvevents_events_total" + labels + "}"), 3.0);
    EXPECT_EQ(value_of(samples, "kvevents_last_sequence" + labels + "}"), 2.0);
    EXPECT_EQ(value_of(samples, "kvevents_restarts_total" + labels + "}"), 0.0);
    EXPECT_EQ(value_of(samples, "kvevents_connection_state" + labels + R"(,state="connected"})"),
              1.0);
    EXPECT_EQ(value_of(samples, "kvevents_connection_state" + labels + R"(,state="connecting"})"),
              0.0);
    EXPECT_EQ(value_of(samples, "kvevents_ready" + labels + "}"), 1.0);
    EXPECT_EQ(value_of(samples, "kvevents_delivery_lag_seconds_count" + labels + "}"), 3.0);
    EXPECT_EQ(value_of(samples, "kvevents_delivery_lag_seconds_bucket" + labels + R"(,le="+Inf"})"),
              3.0);
    const auto lag_sum = value_of(samples, "kvevents_delivery_lag_seconds_sum" + labels + "}");
    ASSERT_TRUE(lag_sum);
    EXPECT_GT(*lag_sum, 0.0);  // seconds: loopback delivery takes micro- to milliseconds
    EXPECT_LT(*lag_sum, 30.0);

    // An untracked client is gone from the next scrape.
    metrics->untrack(*client);
    const auto after = parse_samples(scrape(port));
    EXPECT_FALSE(value_of(after, "kvevents_batches_total" + labels + "}"));
    client->Stop();
}

TEST(PrometheusMetrics, AFleetIsReportedPublisherByPublisherWithLagsLabelledFromEachBatch) {
    ::prometheus::Exposer exposer("127.0.0.1:0");
    auto metrics = std::make_shared<prometheus::ClientMetrics>();
    exposer.RegisterCollectable(metrics);
    const int port = exposer.GetListeningPorts().at(0);

    testing::MockPublisher pub_a;
    testing::MockPublisher pub_b;
    RecordingHandler handler;
    auto observed = metrics->lag_observer(handler);
    FleetOptions fleet_options;
    fleet_options.loop_threads = 1;
    Fleet fleet(fleet_options, *observed);
    metrics->track(fleet);
    ClientOptions a = options_for(pub_a);
    ClientOptions b = options_for(pub_b);
    b.pod_key = "pod-b";
    fleet.add(a);
    fleet.add(b);
    ASSERT_TRUE(pub_a.wait_for_subscriber(std::chrono::seconds(10)));
    ASSERT_TRUE(pub_b.wait_for_subscriber(std::chrono::seconds(10)));
    const auto now = [] {
        return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    for (std::uint64_t i = 0; i < 2; ++i) {
        EventBatch batch = one_store(i);
        batch.ts = now();
        pub_a.publish(batch);
    }
    EventBatch batch = one_store(9);
    batch.ts = now();
    pub_b.publish(batch);
    ASSERT_TRUE(handler.wait_for_batches(3));

    const auto samples = parse_samples(scrape(port));
    const std::string pod_a = R"({model="model-x",pod="pod-a",rank="0")";
    const std::string pod_b = R"({model="model-x",pod="pod-b",rank="0")";
    EXPECT_EQ(value_of(samples, "kvevents_batches_total" + pod_a + "}"), 2.0);
    EXPECT_EQ(value_of(samples, "kvevents_batches_total" + pod_b + "}"), 1.0);
    EXPECT_EQ(value_of(samples, "kvevents_delivery_lag_seconds_count" + pod_a + "}"), 2.0);
    EXPECT_EQ(value_of(samples, "kvevents_delivery_lag_seconds_count" + pod_b + "}"), 1.0);

    // A publisher removed from the fleet is gone from the next scrape.
    fleet.remove("pod-b");
    const auto after = parse_samples(scrape(port));
    EXPECT_FALSE(value_of(after, "kvevents_batches_total" + pod_b + "}"));
    EXPECT_EQ(value_of(after, "kvevents_batches_total" + pod_a + "}"), 2.0);
    metrics->untrack(fleet);
    EXPECT_FALSE(value_of(parse_samples(scrape(port)), "kvevents_batches_total" + pod_a + "}"));
}

TEST(PrometheusMetrics, PublishersAreToldApartByTheirLabels) {
    auto metrics = std::make_shared<prometheus::ClientMetrics>();
    TwoPublishers two;
    auto& [pub_a, pub_b, handler_a, handler_b, options_a, options_b] = two;
    auto observed_a = metrics->lag_observer(handler_a, options_a);
    auto observed_b = metrics->lag_observer(handler_b, options_b);
    auto client_a = start_observed(pub_a, *observed_a, options_a);
    auto client_b = start_observed(pub_b, *observed_b, options_b);
    metrics->track(*client_a);
    metrics->track(*client_b);
    publish_n(pub_a, 2);
    publish_n(pub_b, 5);
    ASSERT_TRUE(handler_a.wait_for_batches(2));
    ASSERT_TRUE(handler_b.wait_for_batches(5));
    std::map<std::string, double> by_pod;
    for (const auto& family : metrics->Collect()) {
        if (family.name != "kvevents_batches_total")
            continue;
        for (const auto& m : family.metric) {
            for (const auto& label : m.label) {
                if (label.name == "pod")
                    by_pod[label.value] = m.counter.value;
            }
        }
    }
    EXPECT_EQ(by_pod, (std::map<std::string, double>{{"pod-a", 2.0}, {"pod-b", 5.0}}));
}

// Options for a client that is never started: its statistics stay at zero.
ClientOptions unstarted(const std::string& pod) {
    ClientOptions options;
    options.pod_key = pod;
    options.endpoint = "tcp://127.0.0.1:5557";
    return options;
}

// The family called `name` in a collection.
const ::prometheus::MetricFamily& family_named(const std::vector<::prometheus::MetricFamily>& all,
                                               const std::string& name) {
    const auto it = std::find_if(all.begin(), all.end(),
                                 [&](const auto& family) { return family.name == name; });
    EXPECT_NE(it, all.end()) << name;
    return *it;
}

TEST(PrometheusMetrics, LabelsCarryTheRankAndADuplicateSeriesIsRefused) {
    prometheus::ClientMetrics metrics;
    RecordingHandler handler;
    ClientOptions options = unstarted("pod-r");
    options.model_name = "org/model";
    options.data_parallel_rank = 2;
    const ZmqClient first(options, handler);  // never started: all counters 0
    const ZmqClient second(options, handler);
    metrics.track(first);
    EXPECT_THROW(metrics.track(second), std::invalid_argument);
    std::vector<std::string> labels;
    const auto all = metrics.Collect();
    for (const auto& m : family_named(all, "kvevents_batches_total").metric) {
        for (const auto& label : m.label) labels.push_back(label.name + "=" + label.value);
        EXPECT_EQ(m.counter.value, 0.0);
    }
    EXPECT_EQ(labels, (std::vector<std::string>{"model=org/model", "pod=pod-r", "rank=2"}));
}

TEST(PrometheusMetrics, ImplausibleTimestampsAreNotObserved) {
    prometheus::ClientMetrics metrics;
    RecordingHandler inner;
    const ClientOptions options = unstarted("pod-t");
    const ZmqClient client(options, inner);
    metrics.track(client);
    auto observer = metrics.lag_observer(inner, options);
    EventBatch old_batch = one_store(1);  // 2023: over a day old
    ReceivedBatch received{options.pod_key, options.model_name, 0, "", old_batch, false, 0};
    observer->on_batch(received);
    EXPECT_EQ(inner.batches().size(), 1u);  // still passed on
    const auto all = metrics.Collect();
    const auto& lags = family_named(all, "kvevents_delivery_lag_seconds");
    ASSERT_EQ(lags.metric.size(), 1u);
    EXPECT_EQ(lags.metric[0].histogram.sample_count, 0u);
}

}  // namespace
}  // namespace kvevents::test

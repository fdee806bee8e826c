#pragma once

// A ZmqClient set up against a MockPublisher with short timeouts, and publishing helpers shared
// by the integration tests.

#include <chrono>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <kvevents/testing/mock_publisher.h>
#include <kvevents/zmq_client.h>

#include "recording_handler.h"
#include "test_batches.h"

namespace kvevents::test {

inline ClientOptions options_for(const testing::MockPublisher& pub) {
    using namespace std::chrono_literals;
    ClientOptions o;
    o.pod_key = "pod-a";
    o.model_name = "model-x";
    o.endpoint = pub.endpoint();
    o.replay_endpoint = pub.replay_endpoint();
    o.replay_idle_timeout = 300ms;
    o.replay_backoff_initial = 300ms;
    o.reconnect_interval = 20ms;
    o.reconnect_interval_max = 100ms;
    return o;
}

/// Publishes n batches. Their bytes depend on the sequence and `incarnation`: a restarted
/// engine's batch differs from the one its predecessor sent under the same number.
inline void publish_n(testing::MockPublisher& pub, std::uint64_t n, std::uint64_t incarnation = 0) {
    for (std::uint64_t i = 0; i < n; ++i)
        pub.publish(one_store(incarnation * 1000000 + pub.next_sequence() + 1000));
}

/// The incarnation publish_n stamped into a recorded batch.
inline std::uint64_t incarnation_of(const ReceivedBatch& b) {
    return std::get<BlockStored>(b.batch.events.at(0)).block_hashes.at(0).to_u64() / 1000000;
}

/// Starts a client and waits until its subscription reached the publisher, so nothing published
/// afterwards is lost to the slow-joiner window.
inline std::unique_ptr<ZmqClient> start_client(testing::MockPublisher& pub,
                                               RecordingHandler& handler,
                                               ClientOptions options) {
    auto client = std::make_unique<ZmqClient>(std::move(options), handler);
    client->Start();
    EXPECT_TRUE(pub.wait_for_subscriber(std::chrono::seconds(10)));
    return client;
}

/// A logger writing into a string, read once the client has stopped.
struct CapturedLog {
    std::ostringstream text;
    std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(text));

    std::vector<std::string> lines_with(const std::string& needle) const {
        std::vector<std::string> out;
        std::istringstream in(text.str());
        for (std::string line; std::getline(in, line);) {
            if (line.find(needle) != std::string::npos)
                out.push_back(line);
        }
        return out;
    }
};

/// Two publishers, each with its handler and client options ("pod-a" and "pod-b").
struct TwoPublishers {
    testing::MockPublisher pub_a;
    testing::MockPublisher pub_b;
    RecordingHandler handler_a;
    RecordingHandler handler_b;
    ClientOptions options_a = options_for(pub_a);
    ClientOptions options_b = [this] {
        ClientOptions o = options_for(pub_b);
        o.pod_key = "pod-b";
        return o;
    }();
};

}  // namespace kvevents::test

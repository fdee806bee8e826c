// The smallest real use of kvevents: publish one batch with the mock publisher, receive it with a
// ZmqClient into the testing library's RecordingHandler, hash a prompt's blocks (kvevents::routing,
// libcrypto), and exit 0 only if all of it worked.
// Built as C++17 against the installed headers, with CMake and with pkg-config.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <kvevents/block_hasher.h>
#include <kvevents/hex.h>
#include <kvevents/testing/mock_publisher.h>
#include <kvevents/testing/recording_handler.h>
#include <kvevents/zmq_client.h>
#ifdef KVEVENTS_CONSUMER_PROMETHEUS
#include <kvevents/prometheus.h>
#endif

int main() {
    const kvevents::BlockHasher hasher(kvevents::HashAlgorithm::kSha256, "0", 16);
    if (hasher.hash_prompt(std::vector<std::int64_t>(40, 7)).size() != 2)
        return 1;

    if (kvevents::from_hex(kvevents::to_hex("kv")) != "kv")
        return 1;

    kvevents::testing::MockPublisher publisher;
    kvevents::testing::RecordingHandler handler;
    kvevents::ClientOptions options;
    options.pod_key = "consumer";
    options.endpoint = publisher.endpoint();
    options.replay_endpoint = publisher.replay_endpoint();
    kvevents::ZmqClient client(options, handler);
    client.Start();
#ifdef KVEVENTS_CONSUMER_PROMETHEUS
    kvevents::prometheus::ClientMetrics metrics;
    metrics.track(client);
    if (metrics.Collect().empty())
        return 1;
    metrics.untrack(client);
#endif

    if (!publisher.wait_for_subscriber(std::chrono::seconds(10)))
        return 1;
    kvevents::BlockStored stored;
    stored.block_hashes = {kvevents::BlockHash::from_unsigned(42)};
    kvevents::EventBatch batch;
    batch.events.emplace_back(stored);
    publisher.publish(batch);

    const bool ok = handler.wait_for_batches(1, std::chrono::seconds(10)) &&
                    std::get<kvevents::BlockStored>(handler.batches().at(0).batch.events.at(0))
                            .block_hashes.at(0)
                            .to_u64() == 42;
    std::printf("consumer: %s\n", ok ? "received batch 0" : "nothing received");
    return ok ? 0 : 1;
}

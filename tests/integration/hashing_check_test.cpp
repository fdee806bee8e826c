// HashingCheck in front of a real client: a mock engine publishes blocks hashed as vLLM hashes
// them, and a check configured with another seed says so within the first batches.

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include <kvevents/hashing_check.h>
#include <kvevents/testing/mock_publisher.h>
#include <kvevents/testing/vllm_blocks.h>
#include <kvevents/zmq_client.h>

#include "client_fixtures.h"
#include "recording_handler.h"

namespace kvevents::test {
namespace {

using testing::MockPublisher;
using testing::prompt_tokens;
using testing::stored_blocks;

// Publishes `prompts` prompts of 3 full blocks, each as two events (blocks 0-1, then block 2
// chained to block 1 by its 64-bit hash), as the engine hashing with `engine` would.
void publish_hashed_prompts(MockPublisher& pub, const BlockHasher& engine, int prompts) {
    for (int p = 0; p < prompts; ++p) {
        const auto tokens = prompt_tokens(3 * engine.block_size() + 1, 1000 * p);
        RequestKeys keys;
        if (p % 2 == 1)
            keys.cache_salt = "tenant-" + std::to_string(p);
        EventBatch batch;
        batch.events.emplace_back(stored_blocks(engine, tokens, keys, 0, 2));
        batch.events.emplace_back(stored_blocks(engine, tokens, keys, 2, 1));
        pub.publish(batch);
    }
}

struct CheckedClient {
    CheckedClient(MockPublisher& pub, BlockHasher hasher) : check(std::move(hasher), recorder) {
        ClientOptions options = options_for(pub);
        client = std::make_unique<ZmqClient>(options, check);
        client->Start();
        EXPECT_TRUE(pub.wait_for_subscriber(std::chrono::seconds(10)));
    }
    RecordingHandler recorder;
    HashingCheck check;
    std::unique_ptr<ZmqClient> client;
};

TEST(HashingCheckWithClient, AWrongSeedIsCaughtAndTheRightOneConfirmed) {
    const BlockHasher engine(HashAlgorithm::kSha256Cbor, "1234", 16);
    testing::MockPublisherOptions po;
    po.report_every_subscription = true;  // two subscribers to one topic
    MockPublisher pub(po);
    CheckedClient right(pub, engine);
    CheckedClient wrong(pub, BlockHasher(HashAlgorithm::kSha256Cbor, "0", 16));
    publish_hashed_prompts(pub, engine, 10);

    ASSERT_TRUE(wrong.recorder.wait_for_notice(StreamNotice::Kind::kHashMismatch));
    ASSERT_TRUE(right.recorder.wait_for_notice(StreamNotice::Kind::kHashesMatch));
    ASSERT_TRUE(right.recorder.wait_for_batches(10));
    ASSERT_TRUE(wrong.recorder.wait_for_batches(10));
    right.client->Stop();
    wrong.client->Stop();

    const auto good = right.check.results();
    ASSERT_EQ(good.size(), 1U);
    EXPECT_EQ(good[0].pod_key, "pod-a");
    EXPECT_EQ(good[0].matched, 30U);
    EXPECT_EQ(good[0].mismatched, 0U);
    EXPECT_EQ(good[0].unverifiable, 0U);
    EXPECT_EQ(right.recorder.count(StreamNotice::Kind::kHashMismatch), 0U);

    const auto bad = wrong.check.results();
    ASSERT_EQ(bad.size(), 1U);
    EXPECT_EQ(bad[0].matched, 0U);
    // Continuations name a parent the wrong seed never produced: those cannot be recomputed.
    EXPECT_EQ(bad[0].mismatched, 20U);
    EXPECT_EQ(bad[0].unverifiable, 10U);
    EXPECT_EQ(wrong.recorder.count(StreamNotice::Kind::kHashMismatch), 1U);
    EXPECT_EQ(wrong.recorder.count(StreamNotice::Kind::kHashesMatch), 0U);
}

}  // namespace
}  // namespace kvevents::test

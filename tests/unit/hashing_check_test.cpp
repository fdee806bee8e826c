// HashingCheck: stored blocks recomputed from the event and compared with the hashes sent.

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/hashing_check.h>
#include <kvevents/testing/vllm_blocks.h>

namespace kvevents {
namespace {

using testing::prompt_tokens;
using testing::stored_blocks;

struct SeenNotice {
    StreamNotice::Kind kind;
    std::string pod_key;
    int rank;
    std::string detail;
};

class Downstream : public EventHandler {
public:
    void on_batch(ReceivedBatch&) override { ++batches; }
    void on_notice(const StreamNotice& n) override {
        notices.push_back({n.kind, n.pod_key, n.data_parallel_rank, n.detail});
    }
    std::size_t count(StreamNotice::Kind kind) const {
        std::size_t n = 0;
        for (const SeenNotice& s : notices) n += s.kind == kind ? 1U : 0U;
        return n;
    }
    std::size_t batches = 0;
    std::vector<SeenNotice> notices;
};

void deliver(EventHandler& h, std::vector<Event> events, std::string pod = "pod-a", int rank = 0) {
    static const std::string model = "m";
    EventBatch batch;
    batch.events = std::move(events);
    ReceivedBatch received{pod, model, 7, "", std::move(batch), false, rank};
    h.on_batch(received);
}

const BlockHasher kEngine(HashAlgorithm::kSha256Cbor, "0", 4);

HashingCheck::PublisherResult only_result(const HashingCheck& check) {
    const auto results = check.results();
    EXPECT_EQ(results.size(), 1U);
    return results.empty() ? HashingCheck::PublisherResult{} : results[0];
}

TEST(HashingCheck, ChainsAcrossEventsMatchAndAreAnnouncedOnce) {
    Downstream next;
    HashingCheck check(kEngine, next);
    const auto tokens = prompt_tokens(22);
    deliver(check, {stored_blocks(kEngine, tokens, {}, 0, 3)});
    // The continuation names its parent by the 64-bit form: checked from the digest kept above.
    deliver(check, {stored_blocks(kEngine, tokens, {}, 3, 2)});
    const auto r = only_result(check);
    EXPECT_EQ(r.matched, 5U);
    EXPECT_EQ(r.mismatched, 0U);
    EXPECT_EQ(r.unverifiable, 0U);
    EXPECT_TRUE(r.matching());
    EXPECT_EQ(next.batches, 2U);
    ASSERT_EQ(next.notices.size(), 1U);
    EXPECT_EQ(next.notices[0].kind, StreamNotice::Kind::kHashesMatch);
    EXPECT_EQ(next.notices[0].pod_key, "pod-a");
    EXPECT_NE(next.notices[0].detail.find("sha256_cbor, seed '0', block size 4"),
              std::string::npos);
}

TEST(HashingCheck, AWrongSeedIsAMismatchAnnouncedOnce) {
    Downstream next;
    HashingCheck check(BlockHasher(HashAlgorithm::kSha256Cbor, "1", 4), next);
    const auto tokens = prompt_tokens(8);
    deliver(check, {stored_blocks(kEngine, tokens, {}, 0, 2)});
    deliver(check, {stored_blocks(kEngine, prompt_tokens(8, 100), {}, 0, 1)});
    const auto r = only_result(check);
    EXPECT_EQ(r.matched, 0U);
    EXPECT_EQ(r.mismatched, 3U);
    EXPECT_FALSE(r.matching());
    ASSERT_EQ(next.notices.size(), 1U);
    EXPECT_EQ(next.notices[0].kind, StreamNotice::Kind::kHashMismatch);
    EXPECT_NE(next.notices[0].detail.find("PYTHONHASHSEED"), std::string::npos);
    EXPECT_NE(next.notices[0].detail.find("seed '1'"), std::string::npos);
    EXPECT_NE(r.last_mismatch.find("computed as"), std::string::npos);
}

TEST(HashingCheck, AWrongAlgorithmIsAMismatchForWholeDigestsToo) {
    const BlockHasher engine(HashAlgorithm::kXxhash, "0", 4);
    Downstream next;
    HashingCheck check(BlockHasher(HashAlgorithm::kSha256, "0", 4), next);
    deliver(check, {stored_blocks(engine, prompt_tokens(12), {}, 0, 3, true)});
    EXPECT_EQ(only_result(check).mismatched, 3U);
    EXPECT_EQ(next.count(StreamNotice::Kind::kHashMismatch), 1U);
}

TEST(HashingCheck, AWholeDigestParentNeedsNoEarlierEvent) {
    const BlockHasher engine(HashAlgorithm::kXxhashCbor, "7", 4);
    Downstream next;
    HashingCheck check(engine, next);
    deliver(check, {stored_blocks(engine, prompt_tokens(16), {}, 2, 2, true)});
    EXPECT_EQ(only_result(check).matched, 2U);
}

TEST(HashingCheck, ExtraKeysAreTakenFromTheEvent) {
    const BlockHasher engine(HashAlgorithm::kSha256, "0", 4);
    Downstream next;
    HashingCheck check(engine, next);
    RequestKeys keys;
    keys.lora_name = "adapter";
    keys.cache_salt = "tenant-9";
    keys.multimodal = {{"image-1", 2, 5}};
    deliver(check, {stored_blocks(engine, prompt_tokens(12), keys, 0, 3)});
    const auto r = only_result(check);
    EXPECT_EQ(r.matched, 3U);
    EXPECT_EQ(r.mismatched, 0U);
}

TEST(HashingCheck, BlocksThatCannotBeRecomputedAreCountedApart) {
    Downstream next;
    HashingCheck check(kEngine, next);
    const auto tokens = prompt_tokens(16);
    // The parent came in an event this check never saw.
    deliver(check, {stored_blocks(kEngine, tokens, {}, 2, 1)});
    EXPECT_EQ(only_result(check).last_unverifiable, "the parent block was not checked here");
    // SGLang's bigram token ids.
    BlockStored bigram = stored_blocks(kEngine, tokens, {}, 0, 1);
    bigram.token_id_form = TokenIdForm::kBigram;
    deliver(check, {bigram});
    // A LoRA block from an engine that sends no extra_keys.
    BlockStored lora = stored_blocks(kEngine, tokens, {}, 0, 1);
    lora.extras.reset();
    lora.lora_id = 3;
    deliver(check, {lora});
    // extra_keys with the wrong number of entries.
    BlockStored short_keys = stored_blocks(kEngine, tokens, {}, 0, 2);
    short_keys.extras->extra_keys->pop_back();
    deliver(check, {short_keys});
    // A float among the extra keys, which vLLM never hashes.
    BlockStored with_float = stored_blocks(kEngine, tokens, {}, 0, 1);
    Value real;
    real.kind = Value::Kind::kFloat;
    (*with_float.extras->extra_keys)[0] = std::vector<Value>{real};
    deliver(check, {with_float});
    // An offload tier's event with another block size.
    BlockStored offloaded = stored_blocks(kEngine, tokens, {}, 0, 1);
    offloaded.block_size = 8;
    offloaded.set_medium("CPU");
    offloaded.token_ids.resize(8);
    deliver(check, {offloaded});
    const auto r = only_result(check);
    EXPECT_EQ(r.unverifiable, 7U);
    EXPECT_EQ(r.matched, 0U);
    EXPECT_EQ(r.mismatched, 0U);
    EXPECT_TRUE(next.notices.empty());
}

TEST(HashingCheck, AnotherBlockSizeOnTheGpuIsAMismatch) {
    const BlockHasher engine(HashAlgorithm::kSha256Cbor, "0", 8);
    Downstream next;
    HashingCheck check(kEngine, next);
    deliver(check, {stored_blocks(engine, prompt_tokens(16), {}, 0, 1)});
    EXPECT_EQ(only_result(check).last_mismatch, "the engine's block size is 8, not 4");
    EXPECT_EQ(next.count(StreamNotice::Kind::kHashMismatch), 1U);
}

TEST(HashingCheck, ARestartForgetsTheDigestsKept) {
    Downstream next;
    HashingCheck check(kEngine, next);
    const auto tokens = prompt_tokens(12);
    deliver(check, {stored_blocks(kEngine, tokens, {}, 0, 1)});
    const std::string pod = "pod-a";
    const StreamNotice restart{StreamNotice::Kind::kPublisherRestarted,
                               pod,
                               0,
                               std::nullopt,
                               ConnectionState::kConnected,
                               {},
                               0};
    check.on_notice(restart);
    deliver(check, {stored_blocks(kEngine, tokens, {}, 1, 1)});
    const auto r = only_result(check);
    EXPECT_EQ(r.matched, 1U);
    EXPECT_EQ(r.unverifiable, 1U);
    EXPECT_EQ(next.count(StreamNotice::Kind::kPublisherRestarted), 1U);
    // AllBlocksCleared forgets too.
    deliver(check, {stored_blocks(kEngine, tokens, {}, 0, 1), AllBlocksCleared{},
                    stored_blocks(kEngine, tokens, {}, 1, 1)});
    EXPECT_EQ(only_result(check).unverifiable, 2U);
}

TEST(HashingCheck, TheVerdictFollowsThePublisher) {
    Downstream next;
    HashingCheck check(kEngine, next);
    const BlockHasher other(HashAlgorithm::kSha256Cbor, "5", 4);
    deliver(check, {stored_blocks(kEngine, prompt_tokens(4), {}, 0, 1)});
    deliver(check, {stored_blocks(other, prompt_tokens(4), {}, 0, 1)});
    deliver(check, {stored_blocks(kEngine, prompt_tokens(4, 9), {}, 0, 1)});
    ASSERT_EQ(next.notices.size(), 3U);
    EXPECT_EQ(next.notices[0].kind, StreamNotice::Kind::kHashesMatch);
    EXPECT_EQ(next.notices[1].kind, StreamNotice::Kind::kHashMismatch);
    EXPECT_EQ(next.notices[2].kind, StreamNotice::Kind::kHashesMatch);
}

TEST(HashingCheck, RemembersABoundedNumberOfDigests) {
    Downstream next;
    HashingCheck::Options options;
    options.remembered_digests = 2;
    HashingCheck check(kEngine, next, options);
    const auto tokens = prompt_tokens(20);
    deliver(check, {stored_blocks(kEngine, tokens, {}, 0, 4)});
    // Block 0's digest was forgotten; block 3's is kept.
    deliver(check, {stored_blocks(kEngine, tokens, {}, 1, 1)});
    deliver(check, {stored_blocks(kEngine, tokens, {}, 4, 1)});
    const auto r = only_result(check);
    EXPECT_EQ(r.matched, 5U);
    EXPECT_EQ(r.unverifiable, 1U);
}

TEST(HashingCheck, PublishersAreKeptApartAcrossThreads) {
    // Notices arrive from every thread here, so the downstream handler keeps nothing.
    LambdaEventHandler next([](const ReceivedBatch&) {});
    HashingCheck check(kEngine, next);
    std::vector<std::thread> threads;
    for (int rank = 0; rank < 4; ++rank) {
        threads.emplace_back([&check, rank] {
            for (int i = 0; i < 50; ++i)
                deliver(check, {stored_blocks(kEngine, prompt_tokens(8, i), {}, 0, 2)}, "pod",
                        rank);
        });
    }
    for (auto& t : threads) t.join();
    const auto results = check.results();
    ASSERT_EQ(results.size(), 4U);
    for (int rank = 0; rank < 4; ++rank) {
        EXPECT_EQ(results[static_cast<std::size_t>(rank)].data_parallel_rank, rank);
        EXPECT_EQ(results[static_cast<std::size_t>(rank)].matched, 100U);
    }
}

}  // namespace
}  // namespace kvevents

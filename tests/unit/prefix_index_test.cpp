// PrefixIndex and PrefixIndexFeed: what a query returns after each kind of update.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/prefix_index.h>
#include <kvevents/prefix_index_feed.h>

namespace kvevents {
namespace {

std::vector<std::uint64_t> keys_from(std::uint64_t first, std::size_t n) {
    std::vector<std::uint64_t> k(n);
    for (std::size_t i = 0; i < n; ++i) k[i] = first + i;
    return k;
}

// A copy, so that a match built in the call's own expression can be looked into.
std::optional<PublisherMatch> find(const PrefixMatch& m, const std::string& pod, int rank = 0) {
    for (const PodMatch& p : m.pods)
        for (const PublisherMatch& r : p.ranks)
            if (r.pod_key == pod && r.data_parallel_rank == rank)
                return r;
    return std::nullopt;
}

TEST(PrefixIndex, CountsLeadingBlocksPerPublisher) {
    PrefixIndex index;
    index.store("pod-a", 0, keys_from(100, 5), kGpuTier);
    index.store("pod-b", 0, keys_from(100, 2), kGpuTier);
    index.store("pod-c", 0, keys_from(101, 4), kGpuTier);  // not the first block: no match
    const PrefixMatch m = index.match(keys_from(100, 8));
    ASSERT_EQ(m.pods.size(), 2U);
    EXPECT_EQ(m.pods[0].pod_key, "pod-a");
    EXPECT_EQ(find(m, "pod-a")->gpu_blocks(), 5U);
    EXPECT_EQ(find(m, "pod-a")->any_tier_blocks(), 5U);
    EXPECT_EQ(find(m, "pod-b")->gpu_blocks(), 2U);
    EXPECT_FALSE(find(m, "pod-c"));
    EXPECT_FALSE(find(m, "pod-a")->stale);
}

TEST(PrefixIndex, StopsProbingWhereNoPublisherContinues) {
    PrefixIndex index;
    index.store("pod-a", 0, keys_from(0, 3), kGpuTier);
    EXPECT_EQ(index.match(keys_from(0, 1000)).blocks_probed, 4U);
    EXPECT_EQ(index.match(keys_from(500, 1000)).blocks_probed, 1U);
    EXPECT_TRUE(index.match(keys_from(500, 1000)).pods.empty());
    EXPECT_EQ(index.match({}).blocks_probed, 0U);
}

TEST(PrefixIndex, TiersAreCumulativeFromTheGpuDown) {
    PrefixIndex index;
    // Blocks 0-1 on the GPU, 2 on CPU only, 3 on disk, 4 on the GPU again, 5 nowhere.
    index.store("pod-a", 0, keys_from(0, 2), kGpuTier);
    index.store("pod-a", 0, {2}, kCpuTier);
    index.store("pod-a", 0, {3}, kDiskTier);
    index.store("pod-a", 0, {4}, kGpuTier);
    const PublisherMatch a = *find(index.match(keys_from(0, 6)), "pod-a");
    EXPECT_EQ(a.blocks[kGpuTier], 2U);
    EXPECT_EQ(a.blocks[kCpuTier], 3U);
    EXPECT_EQ(a.blocks[kDiskTier], 5U);
    EXPECT_EQ(a.blocks[kExternalTier], 5U);
    EXPECT_EQ(a.any_tier_blocks(), 5U);
    // Removing the CPU copy of block 2 cuts every tier's count there.
    index.remove("pod-a", 0, {2}, kCpuTier);
    const PublisherMatch b = *find(index.match(keys_from(0, 6)), "pod-a");
    EXPECT_EQ(b.blocks[kCpuTier], 2U);
    EXPECT_EQ(b.any_tier_blocks(), 2U);
    // A block on two tiers counts at the better one; removing that leaves the other.
    index.store("pod-a", 0, {0}, kCpuTier);
    index.remove("pod-a", 0, {0}, kGpuTier);
    const PublisherMatch c = *find(index.match(keys_from(0, 2)), "pod-a");
    EXPECT_EQ(c.gpu_blocks(), 0U);
    EXPECT_EQ(c.blocks[kCpuTier], 2U);
}

TEST(PrefixIndex, RanksAreSeparatePublishersOfOnePod) {
    PrefixIndex index;
    index.store("pod-a", 0, keys_from(0, 2), kGpuTier);
    index.store("pod-a", 1, keys_from(0, 4), kGpuTier);
    const PrefixMatch m = index.match(keys_from(0, 4));
    ASSERT_EQ(m.pods.size(), 1U);
    ASSERT_EQ(m.pods[0].ranks.size(), 2U);
    EXPECT_EQ(m.pods[0].ranks[0].data_parallel_rank, 0);
    EXPECT_EQ(m.pods[0].ranks[1].data_parallel_rank, 1);
    EXPECT_EQ(m.pods[0].longest_gpu_blocks(), 4U);
    EXPECT_EQ(m.pods[0].longest_any_tier_blocks(), 4U);
}

TEST(PrefixIndex, ClearDropsEverythingAndEndsStaleness) {
    PrefixIndex index;
    index.store("pod-a", 0, keys_from(0, 4), kGpuTier);
    index.store("pod-b", 0, keys_from(0, 4), kGpuTier);
    index.mark_stale("pod-a", 0);
    EXPECT_TRUE(find(index.match(keys_from(0, 4)), "pod-a")->stale);
    index.clear("pod-a", 0);
    EXPECT_FALSE(find(index.match(keys_from(0, 4)), "pod-a"));
    EXPECT_EQ(find(index.match(keys_from(0, 4)), "pod-b")->gpu_blocks(), 4U);
    index.store("pod-a", 0, keys_from(0, 1), kGpuTier);
    const PublisherMatch a = *find(index.match(keys_from(0, 4)), "pod-a");
    EXPECT_EQ(a.gpu_blocks(), 1U);
    EXPECT_FALSE(a.stale);
}

TEST(PrefixIndex, RemovedPublishersAreForgottenAndTheirMemoryReclaimed) {
    PrefixIndex index;
    for (int p = 0; p < 10; ++p)
        index.store("pod-" + std::to_string(p), 0, keys_from(0, 1000), kGpuTier);
    PrefixIndexStats s = index.stats();
    EXPECT_EQ(s.publishers, 10U);
    EXPECT_EQ(s.keys, 1000U);
    EXPECT_EQ(s.entries, 10000U);
    for (int p = 0; p < 9; ++p) index.remove_publisher("pod-" + std::to_string(p), 0);
    s = index.stats();
    EXPECT_EQ(s.publishers, 1U);
    EXPECT_EQ(s.entries, 1000U);
    EXPECT_EQ(s.dead_entries, 9000U);
    ASSERT_EQ(index.match(keys_from(0, 10)).pods.size(), 1U);
    index.sweep();
    s = index.stats();
    EXPECT_EQ(s.dead_entries, 0U);
    EXPECT_EQ(s.keys, 1000U);
    EXPECT_EQ(index.publishers().size(), 1U);
    EXPECT_EQ(index.publishers()[0].blocks, 1000U);
    index.remove_publisher("pod-9", 0);
    index.sweep();
    EXPECT_EQ(index.stats().keys, 0U);
    // Ids come back: a new publisher starts with nothing of the old ones.
    index.store("pod-new", 0, keys_from(5000, 1), kGpuTier);
    EXPECT_TRUE(index.match(keys_from(0, 3)).pods.empty());
}

TEST(PrefixIndex, UpdatesSweepClearedEntriesAsTheyGo) {
    PrefixIndex index;
    index.store("pod-a", 0, keys_from(0, 5000), kGpuTier);
    index.clear("pod-a", 0);
    EXPECT_EQ(index.stats().dead_entries, 5000U);
    for (int i = 0; i < 2000 && index.stats().dead_entries > 0; ++i)
        index.store("pod-b", 0, {static_cast<std::uint64_t>(100000 + i)}, kGpuTier);
    EXPECT_EQ(index.stats().dead_entries, 0U);
}

TEST(PrefixIndex, ManyHoldersOfOneBlockGrowAndShrinkTheirList) {
    PrefixIndex index;
    const auto prompt = keys_from(7, 3);
    for (int p = 0; p < 300; ++p) index.store("pod-" + std::to_string(p), 0, prompt, kGpuTier);
    PrefixMatch m = index.match(prompt);
    ASSERT_EQ(m.pods.size(), 300U);
    for (const PodMatch& pod : m.pods) EXPECT_EQ(pod.longest_gpu_blocks(), 3U);
    for (int p = 0; p < 299; ++p) index.remove("pod-" + std::to_string(p), 0, {8}, kGpuTier);
    m = index.match(prompt);
    ASSERT_EQ(m.pods.size(), 300U);
    EXPECT_EQ(find(m, "pod-0")->gpu_blocks(), 1U);
    EXPECT_EQ(find(m, "pod-299")->gpu_blocks(), 3U);
    EXPECT_EQ(index.stats().entries, 300U * 3 - 299);
}

TEST(PrefixIndex, GrowsItsTablesWithoutLosingAnything) {
    PrefixIndex::Options options;
    options.shards = 2;
    PrefixIndex index(options);
    index.store("pod-a", 0, keys_from(0, 50000), kGpuTier);
    index.store("pod-b", 0, keys_from(0, 20000), kCpuTier);
    const PrefixMatch m = index.match(keys_from(0, 50000));
    EXPECT_EQ(find(m, "pod-a")->gpu_blocks(), 50000U);
    EXPECT_EQ(find(m, "pod-b")->blocks[kCpuTier], 20000U);
    EXPECT_EQ(index.stats().keys, 50000U);
    index.remove("pod-a", 0, keys_from(0, 50000), kGpuTier);
    EXPECT_EQ(index.stats().keys, 20000U);
    EXPECT_EQ(find(index.match(keys_from(0, 3)), "pod-b")->any_tier_blocks(), 3U);
}

TEST(PrefixIndex, MediaMapToTiersAndUnknownOnesKeepTheirNames) {
    PrefixIndex index;
    EXPECT_EQ(index.tier_for(Medium::kUnset, ""), kGpuTier);
    EXPECT_EQ(index.tier_for(Medium::kGpu, "GPU"), kGpuTier);
    EXPECT_EQ(index.tier_for(Medium::kCpuPinned, ""), kCpuTier);
    EXPECT_EQ(index.tier_for(Medium::kFs, ""), kDiskTier);
    EXPECT_EQ(index.tier_for(Medium::kStorage, ""), kExternalTier);
    EXPECT_EQ(index.tier_for(Medium::kOther, "cuda:1"), 4U);
    EXPECT_EQ(index.tier_for(Medium::kOther, "nvme-pool"), 5U);
    EXPECT_EQ(index.tier_for(Medium::kOther, "cuda:1"), 4U);
    EXPECT_EQ(index.tier_for(Medium::kOther, "x"), 6U);
    EXPECT_EQ(index.tier_for(Medium::kOther, "y"), 7U);
    EXPECT_EQ(index.tier_for(Medium::kOther, "z"), 7U);
    EXPECT_EQ(index.tier_name(kCpuTier), "CPU");
    EXPECT_EQ(index.tier_name(4), "cuda:1");
    EXPECT_EQ(index.tier_name(kMaxTiers), "");
    EXPECT_THROW(index.store("p", 0, {1}, kMaxTiers), std::invalid_argument);
}

TEST(TopK, RanksPublishersByTheWeightOfTheirTiers) {
    PrefixIndex index;
    index.store("gpu-short", 0, keys_from(0, 2), kGpuTier);
    index.store("cpu-long", 0, keys_from(0, 6), kCpuTier);
    index.store("gpu-stale", 0, keys_from(0, 4), kGpuTier);
    index.mark_stale("gpu-stale", 0);
    const auto best = top_k(index.match(keys_from(0, 6)), 2);
    ASSERT_EQ(best.size(), 2U);
    EXPECT_EQ(best[0].pod_key, "cpu-long");  // 6 x 0.8
    EXPECT_DOUBLE_EQ(best[0].score, 4.8);
    EXPECT_EQ(best[1].pod_key, "gpu-short");  // 2 x 1.0 beats 4 x 1.0 x 0.5 on the tie by name
    EXPECT_DOUBLE_EQ(best[1].score, 2.0);
    EXPECT_EQ(top_k(index.match(keys_from(0, 6)), 10).size(), 3U);
    TierWeights gpu_only;
    gpu_only.weight = {1, 0, 0, 0, 0, 0, 0, 0};
    gpu_only.stale_factor = 1;
    EXPECT_EQ(top_k(index.match(keys_from(0, 6)), 1, gpu_only)[0].pod_key, "gpu-stale");
}

// --- the feed
// -------------------------------------------------------------------------------------

void deliver(EventHandler& h, const std::string& pod, int rank, std::vector<Event> events) {
    static const std::string model = "m";
    EventBatch batch;
    batch.events = std::move(events);
    ReceivedBatch received{pod, model, 0, "", std::move(batch), false, rank};
    h.on_batch(received);
}

BlockStored stored(std::vector<std::uint64_t> keys, const char* medium = nullptr) {
    BlockStored e;
    for (const auto k : keys) e.block_hashes.push_back(BlockHash::from_unsigned(k));
    if (medium != nullptr)
        e.set_medium(medium);
    return e;
}

BlockRemoved removed(std::vector<std::uint64_t> keys, const char* medium = nullptr) {
    BlockRemoved e;
    for (const auto k : keys) e.block_hashes.push_back(BlockHash::from_unsigned(k));
    if (medium != nullptr)
        e.set_medium(medium);
    return e;
}

StreamNotice notice(StreamNotice::Kind kind, const std::string& pod) {
    return StreamNotice{kind, pod, std::nullopt, std::nullopt, ConnectionState::kConnected, {}, 0};
}

TEST(PrefixIndexFeed, AppliesEventsAndNoticesThenPassesThemOn) {
    PrefixIndex index;
    int batches = 0;
    int notices = 0;
    LambdaEventHandler next([&](const ReceivedBatch&) { ++batches; },
                            [&](const StreamNotice&) { ++notices; });
    PrefixIndexFeed feed(index, &next);
    const std::string pod = "pod-a";
    deliver(feed, pod, 0, {stored({1, 2, 3}), stored({4}, "CPU"), removed({2})});
    PublisherMatch m = *find(index.match({1, 2, 3, 4}), pod);
    EXPECT_EQ(m.gpu_blocks(), 1U);
    EXPECT_EQ(m.any_tier_blocks(), 1U);
    deliver(feed, pod, 0, {stored({2}, "cpu")});
    m = *find(index.match({1, 2, 3, 4}), pod);
    EXPECT_EQ(m.blocks[kCpuTier], 4U);
    // Integer and whole-digest forms of one block meet.
    const std::uint8_t digest[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
    BlockStored as_digest;
    as_digest.block_hashes.push_back(BlockHash::from_digest(digest, sizeof digest));
    deliver(feed, "pod-b", 0, {as_digest});
    EXPECT_TRUE(find(index.match({9}), "pod-b"));

    feed.on_notice(notice(StreamNotice::Kind::kUnrecoverableGap, pod));
    EXPECT_TRUE(find(index.match({1}), pod)->stale);
    feed.on_notice(notice(StreamNotice::Kind::kPublisherRestarted, pod));
    EXPECT_FALSE(find(index.match({1}), pod));
    deliver(feed, pod, 0, {stored({1}), AllBlocksCleared{}, stored({5})});
    EXPECT_FALSE(find(index.match({1}), pod));
    EXPECT_TRUE(find(index.match({5}), pod));
    feed.on_notice(notice(StreamNotice::Kind::kDecodeError, pod));
    EXPECT_TRUE(find(index.match({5}), pod)->stale);
    feed.on_notice(notice(StreamNotice::Kind::kContinuityLost, pod));
    EXPECT_FALSE(find(index.match({5}), pod));
    feed.on_notice(notice(StreamNotice::Kind::kConnectionChanged, pod));
    EXPECT_EQ(batches, 4);
    EXPECT_EQ(notices, 5);
    PrefixIndexFeed alone(index);
    deliver(alone, "pod-c", 1, {stored({1})});
    alone.on_notice(notice(StreamNotice::Kind::kUnrecoverableGap, "pod-c"));
    EXPECT_TRUE(find(index.match({1}), "pod-c", 1));
    EXPECT_FALSE(find(index.match({1}), "pod-c", 0));
}

}  // namespace
}  // namespace kvevents

// PrefixIndex under concurrent updates and queries (run under TSan in CI): queries never see a
// torn entry, a publisher that does not change is always seen whole, and tables grow and
// cleared publishers are swept while queries run.

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/prefix_index.h>

namespace kvevents {
namespace {

std::vector<std::uint64_t> range(std::uint64_t first, std::size_t n) {
    std::vector<std::uint64_t> k(n);
    for (std::size_t i = 0; i < n; ++i) k[i] = first + i;
    return k;
}

TEST(PrefixIndexConcurrency, QueriesSeeWholeEntriesWhileUpdatesStream) {
    PrefixIndex::Options options;
    options.shards = 4;  // few shards: writers and readers meet often
    PrefixIndex index(options);
    const auto prompt = range(1000000, 64);
    index.store("steady", 0, prompt, kGpuTier);
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> queries{0};
    std::atomic<std::uint64_t> problems{0};

    std::vector<std::thread> threads;
    // Churn on the prompt's own blocks: many holders come and go on every tier.
    threads.emplace_back([&] {
        for (int round = 0; round < 400; ++round) {
            const std::string pod = "churn-" + std::to_string(round % 40);
            const std::size_t n = 1 + static_cast<std::size_t>(round % 64);
            index.store(pod, round % 2, range(1000000, n), static_cast<std::size_t>(round % 5));
            if (round % 3 == 0)
                index.remove(pod, round % 2, range(1000000 + n / 2, n), kGpuTier);
            if (round % 7 == 0)
                index.clear(pod, round % 2);
            if (round % 11 == 0)
                index.remove_publisher(pod, 1 - round % 2);
        }
    });
    // Bulk stores that make every shard's table grow several times, and sweeps.
    threads.emplace_back([&] {
        for (int round = 0; round < 40; ++round) {
            index.store("bulk", 0, range(static_cast<std::uint64_t>(round) * 2000, 2000), kCpuTier);
            if (round % 10 == 9) {
                index.clear("bulk", 0);
                index.sweep();
            }
        }
    });
    for (int reader = 0; reader < 2; ++reader) {
        threads.emplace_back([&] {
            while (!done.load()) {
                const PrefixMatch m = index.match(prompt);
                queries.fetch_add(1);
                bool steady_whole = false;
                for (const PodMatch& pod : m.pods) {
                    for (const PublisherMatch& r : pod.ranks) {
                        for (std::size_t t = 0; t < kMaxTiers; ++t) {
                            if (r.blocks[t] > prompt.size() ||
                                (t > 0 && r.blocks[t] < r.blocks[t - 1]))
                                problems.fetch_add(1);
                        }
                        if (r.pod_key == "steady")
                            steady_whole = r.gpu_blocks() == prompt.size();
                    }
                }
                if (!steady_whole)
                    problems.fetch_add(1);
            }
        });
    }
    threads[0].join();
    threads[1].join();
    done = true;
    threads[2].join();
    threads[3].join();
    EXPECT_EQ(problems.load(), 0U);
    EXPECT_GT(queries.load(), 0U);
    std::size_t steady_blocks = 0;
    for (const PodMatch& pod : index.match(prompt).pods)
        if (pod.pod_key == "steady")
            steady_blocks = pod.longest_gpu_blocks();
    EXPECT_EQ(steady_blocks, prompt.size());
    index.sweep();
    EXPECT_EQ(index.stats().dead_entries, 0U);
}

}  // namespace
}  // namespace kvevents

// kvevents-index-bench: PrefixIndex against the baseline a gateway writes first
// (std::unordered_map<key, small vector of holders> under one std::shared_mutex), on a fleet of
// publishers with shared system-prompt prefixes, and BlockHasher's throughput per algorithm.
//
//   kvevents-index-bench [--publishers N] [--blocks-per-publisher N] [--benchmark_...=...]
//
// Defaults: 100 publishers with about 100,000 blocks each. Each publisher holds 100 chains of
// 1,000 blocks; a chain starts with one of 50 system prompts of 32 blocks (each publisher uses
// 20 of them), so those blocks are held by about 40 publishers each.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <benchmark/benchmark.h>

#include <kvevents/block_hasher.h>
#include <kvevents/prefix_index.h>

#include "bench_flags.h"
#include "google_benchmark_main.h"
#include "index_baseline.h"
#include "process_memory.h"

namespace {

using kvevents::bench::SharedMutexIndex;
using Keys = std::vector<std::uint64_t>;

constexpr std::size_t kSystemPrompts = 50;
constexpr std::size_t kSystemPromptBlocks = 32;
constexpr std::size_t kSystemPromptsPerPublisher = 20;
constexpr std::size_t kChainBlocks = 1000;
constexpr std::size_t kUpdateBatch = 16;

std::size_t g_publishers = 100;
std::size_t g_blocks_per_publisher = 100000;

// Distinct, well-spread keys, as vLLM's digests are.
std::uint64_t spread(std::uint64_t n) {
    n += 0x9e3779b97f4a7c15ULL;
    n = (n ^ (n >> 30)) * 0xbf58476d1ce4e5b9ULL;
    n = (n ^ (n >> 27)) * 0x94d049bb133111ebULL;
    return n ^ (n >> 31);
}

struct Dataset {
    std::vector<std::vector<Keys>> chains;  // [publisher][chain]
    std::atomic<std::uint64_t> next_fresh_key{1};
    std::size_t entries = 0;

    std::uint64_t fresh() { return spread(next_fresh_key.fetch_add(1, std::memory_order_relaxed)); }
};

Dataset& dataset() {
    static Dataset data;
    static const bool made = [] {
        std::mt19937_64 rng(7);
        std::vector<Keys> system(kSystemPrompts);
        for (Keys& s : system)
            for (std::size_t i = 0; i < kSystemPromptBlocks; ++i) s.push_back(data.fresh());
        const std::size_t chains = std::max<std::size_t>(1, g_blocks_per_publisher / kChainBlocks);
        data.chains.resize(g_publishers);
        for (auto& publisher_chains : data.chains) {
            std::vector<std::size_t> mine;
            for (std::size_t i = 0; i < kSystemPromptsPerPublisher; ++i)
                mine.push_back(rng() % kSystemPrompts);
            for (std::size_t c = 0; c < chains; ++c) {
                Keys chain = system[mine[c % mine.size()]];
                while (chain.size() < kChainBlocks) chain.push_back(data.fresh());
                publisher_chains.push_back(std::move(chain));
            }
        }
        return true;
    }();
    (void)made;
    return data;
}

struct OursAdapter {
    kvevents::PrefixIndex index;
    std::vector<std::string> names;
    OursAdapter() {
        for (std::size_t p = 0; p < g_publishers; ++p) names.push_back("pod-" + std::to_string(p));
    }
    void store(std::size_t p, const Keys& keys) { index.store(names[p], 0, keys, 0); }
    void remove(std::size_t p, const Keys& keys) { index.remove(names[p], 0, keys, 0); }
    std::size_t match(const Keys& keys) { return index.match(keys).blocks_probed; }
};

struct BaselineAdapter {
    SharedMutexIndex index;
    void store(std::size_t p, const Keys& keys) {
        index.store(static_cast<std::uint32_t>(p), keys, 0);
    }
    void remove(std::size_t p, const Keys& keys) {
        index.remove(static_cast<std::uint32_t>(p), keys, 0);
    }
    std::size_t match(const Keys& keys) {
        thread_local std::vector<SharedMutexIndex::Match> local;
        return index.match(keys, local);
    }
};

// Both indexes are built once; the memory each took is measured as it is built.
template <class Adapter>
struct Built {
    std::unique_ptr<Adapter> adapter;
    double bytes_per_entry = 0;
};

template <class Adapter>
Built<Adapter>& built() {
    static Built<Adapter> b = [] {
        Dataset& data = dataset();
        Built<Adapter> made;
        const double before = kvevents::bench::rss_mib();
        made.adapter = std::make_unique<Adapter>();
        std::size_t entries = 0;
        for (std::size_t p = 0; p < data.chains.size(); ++p) {
            for (const Keys& chain : data.chains[p]) made.adapter->store(p, chain);
        }
        for (std::size_t p = 0; p < data.chains.size(); ++p) {
            // System-prompt blocks count once per publisher, however many chains share them.
            std::vector<const Keys*> firsts;
            for (const Keys& chain : data.chains[p]) {
                bool repeat = false;
                for (const Keys* f : firsts) repeat = repeat || (*f)[0] == chain[0];
                entries += repeat ? kChainBlocks - kSystemPromptBlocks : kChainBlocks;
                if (!repeat)
                    firsts.push_back(&chain);
            }
        }
        data.entries = entries;
        made.bytes_per_entry =
            (kvevents::bench::rss_mib() - before) * 1024.0 * 1024.0 / static_cast<double>(entries);
        return made;
    }();
    return b;
}

// Prompts: the first `blocks` blocks of random chains.
std::vector<Keys> prompts(std::size_t blocks, std::size_t count) {
    Dataset& data = dataset();
    std::mt19937_64 rng(blocks);
    std::vector<Keys> out;
    for (std::size_t i = 0; i < count; ++i) {
        const auto& chains = data.chains[rng() % data.chains.size()];
        const Keys& chain = chains[rng() % chains.size()];
        out.emplace_back(chain.begin(), chain.begin() + static_cast<std::ptrdiff_t>(
                                                            std::min(blocks, chain.size())));
    }
    return out;
}

// Offered block updates: each step stores a batch of fresh blocks for a random publisher and
// removes the batch stored 4,096 steps earlier, so the index keeps its size.
template <class Adapter>
class UpdateStream {
public:
    explicit UpdateStream(Adapter& index) : index_(index), rng_(11) {}
    std::size_t step() {
        Keys batch;
        for (std::size_t i = 0; i < kUpdateBatch; ++i) batch.push_back(dataset().fresh());
        const std::size_t p = rng_() % g_publishers;
        index_.store(p, batch);
        pending_.emplace_back(p, std::move(batch));
        std::size_t updates = kUpdateBatch;
        if (pending_.size() > 4096) {
            index_.remove(pending_.front().first, pending_.front().second);
            pending_.pop_front();
            updates += kUpdateBatch;
        }
        return updates;
    }
    void drain() {
        for (const auto& [p, batch] : pending_) index_.remove(p, batch);
        pending_.clear();
    }

private:
    Adapter& index_;
    std::mt19937_64 rng_;
    std::deque<std::pair<std::size_t, Keys>> pending_;
};

template <class Adapter>
void BM_Query(benchmark::State& state) {
    Adapter& index = *built<Adapter>().adapter;
    const std::vector<Keys> set = prompts(static_cast<std::size_t>(state.range(0)), 1000);
    std::size_t probes = 0;
    std::size_t i = 0;
    for (auto _ : state) {
        probes += index.match(set[i++ % set.size()]);
    }
    state.counters["queries/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["probes/s"] =
        benchmark::Counter(static_cast<double>(probes), benchmark::Counter::kIsRate);
}

// Queries on this thread while another offers 1,000,000 block updates per second.
template <class Adapter>
void BM_QueryWhileUpdating(benchmark::State& state) {
    Adapter& index = *built<Adapter>().adapter;
    const std::vector<Keys> set = prompts(static_cast<std::size_t>(state.range(0)), 1000);
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> applied{0};
    std::thread writer([&] {
        UpdateStream<Adapter> stream(index);
        using Clock = std::chrono::steady_clock;
        const auto start = Clock::now();
        std::size_t done = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            done += stream.step();
            // Paced to 1M/s: ahead of schedule, wait for it.
            const auto due = start + std::chrono::microseconds(done);
            if (Clock::now() < due)
                std::this_thread::sleep_until(due);
        }
        applied.store(done);
        stream.drain();
    });
    const auto started = std::chrono::steady_clock::now();
    std::size_t probes = 0;
    std::size_t i = 0;
    for (auto _ : state) {
        probes += index.match(set[i++ % set.size()]);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stop = true;
    writer.join();
    state.counters["queries/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["probes/s"] =
        benchmark::Counter(static_cast<double>(probes), benchmark::Counter::kIsRate);
    state.counters["updates/s"] = static_cast<double>(applied.load()) / seconds;
}

template <class Adapter>
void BM_Update(benchmark::State& state) {
    Adapter& index = *built<Adapter>().adapter;
    UpdateStream<Adapter> stream(index);
    std::size_t updates = 0;
    for (auto _ : state) updates += stream.step();
    state.counters["updates/s"] =
        benchmark::Counter(static_cast<double>(updates), benchmark::Counter::kIsRate);
    stream.drain();  // after the timed loop
}

template <class Adapter>
void BM_Memory(benchmark::State& state) {
    const Built<Adapter>& b = built<Adapter>();
    for (auto _ : state) benchmark::DoNotOptimize(b.bytes_per_entry);
    state.counters["bytes/entry"] = b.bytes_per_entry;
    state.counters["entries"] = static_cast<double>(dataset().entries);
}

void BM_BlockHasher(benchmark::State& state) {
    const auto algorithm = static_cast<kvevents::HashAlgorithm>(state.range(0));
    const kvevents::BlockHasher hasher(algorithm, "0", 16);
    std::vector<std::int64_t> tokens(1024);
    std::mt19937_64 rng(3);
    for (auto& t : tokens) t = static_cast<std::int64_t>(rng() % 150000);
    for (auto _ : state) benchmark::DoNotOptimize(hasher.hash_prompt(tokens));
    state.SetLabel(kvevents::to_string(algorithm));
    state.counters["blocks/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 64,
                                                    benchmark::Counter::kIsRate);
}

BENCHMARK_TEMPLATE(BM_Memory, OursAdapter)->Iterations(1);
BENCHMARK_TEMPLATE(BM_Memory, BaselineAdapter)->Iterations(1);
BENCHMARK_TEMPLATE(BM_Query, OursAdapter)->Arg(64)->Arg(1000);
BENCHMARK_TEMPLATE(BM_Query, BaselineAdapter)->Arg(64)->Arg(1000);
BENCHMARK_TEMPLATE(BM_QueryWhileUpdating, OursAdapter)->Arg(64)->Arg(1000)->UseRealTime();
BENCHMARK_TEMPLATE(BM_QueryWhileUpdating, BaselineAdapter)->Arg(64)->Arg(1000)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Update, OursAdapter);
BENCHMARK_TEMPLATE(BM_Update, BaselineAdapter);
BENCHMARK(BM_BlockHasher)->DenseRange(0, 3);

}  // namespace

int main(int argc, char** argv) {
    CLI::App app(
        "PrefixIndex against a shared_mutex unordered_map baseline, and BlockHasher throughput.",
        "kvevents-index-bench");
    const CLI::Range at_least_one(std::size_t{1}, std::numeric_limits<std::size_t>::max());
    app.add_option("--publishers", g_publishers, "publishers in the fleet (default 100)")
        ->check(at_least_one)
        ->type_name("N");
    app.add_option("--blocks-per-publisher", g_blocks_per_publisher,
                   "blocks each publisher holds (default 100000)")
        ->check(at_least_one)
        ->type_name("N");
    app.footer(kvevents::bench::kGoogleBenchmarkFlagsNote);
    const std::vector<std::string> benchmark_flags =
        kvevents::bench::parse_flags_or_exit(app, argc, argv, true);
    return kvevents::bench::run_google_benchmarks(argv[0], benchmark_flags);
}

// Decoder throughput against the object-tree approach, on identical bytes in the same run.
// Read the ratio of BM_Decode/<case> to BM_Baseline/<case> items_per_second.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <benchmark/benchmark.h>

#include <kvevents/decode.h>
#include <kvevents/testing/encoder.h>

#include "bench_flags.h"
#include "google_benchmark_main.h"
#include "object_tree_baseline.h"
#include "workload.h"

namespace {

using kvevents::testing::WireEra;

const std::string& payload_for(WireEra era) {
    static const std::string map_era =
        kvevents::testing::encode_batch(kvevents::bench::realistic_batch(), {WireEra::kMapEvents});
    static const std::string positional = kvevents::testing::encode_batch(
        kvevents::bench::realistic_batch(), {WireEra::kKvCacheSpec});
    return era == WireEra::kMapEvents ? map_era : positional;
}

template <class Decode>
void run(benchmark::State& state, WireEra era, Decode decode) {
    const std::string& payload = payload_for(era);
    std::size_t events = 0;
    for (auto _ : state) {
        auto batch = decode(payload);
        events += batch.events.size();
        benchmark::DoNotOptimize(batch);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
    state.counters["payload_bytes"] = static_cast<double>(payload.size());
}

kvevents::EventBatch decode_kvevents(const std::string& p) {
    kvevents::DecodeResult r = kvevents::decode_batch(p.data(), p.size());
    return std::move(r.batch);
}

kvevents::EventBatch decode_baseline(const std::string& p) {
    return kvevents::bench::decode_via_object_tree(p.data(), p.size());
}

void BM_Decode(benchmark::State& state, WireEra era) {
    run(state, era, decode_kvevents);
}
void BM_Baseline(benchmark::State& state, WireEra era) {
    run(state, era, decode_baseline);
}

BENCHMARK_CAPTURE(BM_Decode, map_era, WireEra::kMapEvents);
BENCHMARK_CAPTURE(BM_Baseline, map_era, WireEra::kMapEvents);
BENCHMARK_CAPTURE(BM_Decode, positional, WireEra::kKvCacheSpec);
BENCHMARK_CAPTURE(BM_Baseline, positional, WireEra::kKvCacheSpec);

}  // namespace

int main(int argc, char** argv) {
    CLI::App app(
        "Decoder throughput against the object-tree approach, on identical bytes in the same run.",
        "kvevents-decode-bench");
    app.footer(kvevents::bench::kGoogleBenchmarkFlagsNote);
    const std::vector<std::string> benchmark_flags =
        kvevents::bench::parse_flags_or_exit(app, argc, argv, true);
    return kvevents::bench::run_google_benchmarks(argv[0], benchmark_flags);
}

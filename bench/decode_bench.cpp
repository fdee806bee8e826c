// Decoder throughput against msgpack-cxx, on identical bytes in the same run:
// BM_Decode (decode_batch), BM_Baseline (msgpack::unpack into an object tree, then a walk into
// events), BM_Visitor (msgpack::parse with a visitor building the events) and BM_NullVisitor
// (msgpack::parse with a visitor doing nothing: a lower bound for any msgpack-cxx decoder).
// Read the ratios of items_per_second (events/s). Before measuring, main() checks that both
// event-building baselines produce exactly what decode_batch does, and exits 1 if not.
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <benchmark/benchmark.h>

#include <kvevents/decode.h>
#include <kvevents/testing/encoder.h>

#include "bench_flags.h"
#include "google_benchmark_main.h"
#include "object_tree_baseline.h"
#include "visitor_baseline.h"
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

kvevents::EventBatch decode_kvevents(const std::string& p) {
    kvevents::DecodeResult r = kvevents::decode_batch(p.data(), p.size());
    return std::move(r.batch);
}

kvevents::EventBatch decode_object_tree(const std::string& p) {
    return kvevents::bench::decode_via_object_tree(p.data(), p.size());
}

kvevents::EventBatch decode_visitor(const std::string& p) {
    std::optional<kvevents::EventBatch> batch =
        kvevents::bench::decode_via_visitor(p.data(), p.size());
    return batch ? std::move(*batch) : kvevents::EventBatch{};
}

bool parse_null(const std::string& p) {
    return kvevents::bench::parse_with_null_visitor(p.data(), p.size());
}

// Events are counted from decode_batch's result, so every case reports events/s alike, the
// null visitor's included.
template <class Decode>
void run(benchmark::State& state, WireEra era, Decode decode) {
    const std::string& payload = payload_for(era);
    const std::size_t events_per_batch = decode_kvevents(payload).events.size();
    for (auto _ : state) {
        auto result = decode(payload);
        benchmark::DoNotOptimize(result);
    }
    state.SetItemsProcessed(
        static_cast<std::int64_t>(static_cast<std::size_t>(state.iterations()) * events_per_batch));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
    state.counters["payload_bytes"] = static_cast<double>(payload.size());
}

void BM_Decode(benchmark::State& state, WireEra era) {
    run(state, era, decode_kvevents);
}
void BM_Baseline(benchmark::State& state, WireEra era) {
    run(state, era, decode_object_tree);
}
void BM_Visitor(benchmark::State& state, WireEra era) {
    run(state, era, decode_visitor);
}
void BM_NullVisitor(benchmark::State& state, WireEra era) {
    run(state, era, parse_null);
}

BENCHMARK_CAPTURE(BM_Decode, map_era, WireEra::kMapEvents);
BENCHMARK_CAPTURE(BM_Baseline, map_era, WireEra::kMapEvents);
BENCHMARK_CAPTURE(BM_Visitor, map_era, WireEra::kMapEvents);
BENCHMARK_CAPTURE(BM_NullVisitor, map_era, WireEra::kMapEvents);
BENCHMARK_CAPTURE(BM_Decode, positional, WireEra::kKvCacheSpec);
BENCHMARK_CAPTURE(BM_Baseline, positional, WireEra::kKvCacheSpec);
BENCHMARK_CAPTURE(BM_Visitor, positional, WireEra::kKvCacheSpec);
BENCHMARK_CAPTURE(BM_NullVisitor, positional, WireEra::kKvCacheSpec);

bool same_batch(const kvevents::EventBatch& a, const kvevents::EventBatch& b) {
    return a.ts == b.ts && a.data_parallel_rank == b.data_parallel_rank && a.events == b.events;
}

// The baselines are only comparable if they do the same work: the same events, field for field.
bool baselines_agree() {
    bool agree = true;
    for (const auto& [era, name] : {std::pair{WireEra::kMapEvents, "map_era"},
                                    std::pair{WireEra::kKvCacheSpec, "positional"}}) {
        const std::string& payload = payload_for(era);
        const kvevents::DecodeResult reference =
            kvevents::decode_batch(payload.data(), payload.size());
        const bool object_tree = same_batch(decode_object_tree(payload), reference.batch);
        const std::optional<kvevents::EventBatch> visited =
            kvevents::bench::decode_via_visitor(payload.data(), payload.size());
        const bool visitor = visited && same_batch(*visited, reference.batch);
        const bool null_visitor = parse_null(payload);
        if (!reference.ok() || reference.batch.events.empty() || !object_tree || !visitor ||
            !null_visitor) {
            std::fprintf(stderr,
                         "%s: baselines disagree with decode_batch (object tree %s, visitor %s, "
                         "null visitor %s)\n",
                         name, object_tree ? "same" : "DIFFERENT", visitor ? "same" : "DIFFERENT",
                         null_visitor ? "parsed" : "FAILED");
            agree = false;
        }
    }
    return agree;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app(
        "Decoder throughput against msgpack-cxx's object tree and visitors, on identical "
        "bytes in the same run.",
        "kvevents-decode-bench");
    app.footer(kvevents::bench::kGoogleBenchmarkFlagsNote);
    const std::vector<std::string> benchmark_flags =
        kvevents::bench::parse_flags_or_exit(app, argc, argv, true);
    if (!baselines_agree())
        return 1;
    return kvevents::bench::run_google_benchmarks(argv[0], benchmark_flags);
}

#include "google_benchmark_main.h"

#include <benchmark/benchmark.h>

namespace kvevents::bench {

const char* const kGoogleBenchmarkFlagsNote =
    "Google Benchmark's flags pass through, written --benchmark_NAME=VALUE: e.g.\n"
    "--benchmark_filter=REGEX, --benchmark_min_time=SECONDS, --benchmark_repetitions=N,\n"
    "--benchmark_format=json, --benchmark_out=FILE.";

int run_google_benchmarks(const char* program, const std::vector<std::string>& benchmark_flags) {
    std::vector<std::string> args = {program};
    args.insert(args.end(), benchmark_flags.begin(), benchmark_flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int argc = static_cast<int>(args.size());
    benchmark::Initialize(&argc, argv.data());
    if (benchmark::ReportUnrecognizedArguments(argc, argv.data()))
        return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

}  // namespace kvevents::bench

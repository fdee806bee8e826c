#pragma once

#include <string>
#include <vector>

namespace kvevents::bench {

/// Runs the registered Google Benchmarks with `benchmark_flags` (--benchmark_*, as
/// parse_flags_or_exit passes them). Returns the exit status: 2 for a flag Google Benchmark
/// does not know.
int run_google_benchmarks(const char* program, const std::vector<std::string>& benchmark_flags);

/// The help text's note on those flags.
extern const char* const kGoogleBenchmarkFlagsNote;

}  // namespace kvevents::bench

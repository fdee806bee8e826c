#pragma once

// Flag parsing shared by the benchmark programs, with CLI11: --help prints the usage and exits 0;
// an unknown flag, a missing or bad value prints one line naming the flag and exits 2.

#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace kvevents::bench {

/// Parses argv with `app`, or exits (0 after --help, 2 after a usage error). With
/// `pass_benchmark_flags`, arguments starting with --benchmark_ are Google Benchmark's: they are
/// returned, in order, for run_google_benchmarks().
std::vector<std::string> parse_flags_or_exit(CLI::App& app,
                                             int argc,
                                             char** argv,
                                             bool pass_benchmark_flags = false);

}  // namespace kvevents::bench

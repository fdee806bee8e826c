#pragma once

// Summaries of measured samples, shared by the benchmark programs.

#include <vector>

namespace kvevents::bench {

/// The q-quantile (0 <= q <= 1) of `samples` by nearest rank below; 0 when there are none.
double percentile(std::vector<double> samples, double q);

}  // namespace kvevents::bench

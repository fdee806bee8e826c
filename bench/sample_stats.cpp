#include "sample_stats.h"

#include <algorithm>
#include <cstddef>

namespace kvevents::bench {

double percentile(std::vector<double> samples, double q) {
    if (samples.empty())
        return 0;
    const auto k = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k),
                     samples.end());
    return samples[k];
}

}  // namespace kvevents::bench

#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>

namespace kvevents::detail {

// Wall-clock time from a batch's ts to now. ts comes from the wire: anything that is not a
// plausible time (not finite, in the future, over a day old) counts as no lag.
inline std::chrono::microseconds lag_since(double ts) {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const double lag = now - ts;
    if (!std::isfinite(lag) || lag < 0 || lag > 86400.0)
        return std::chrono::microseconds(0);
    return std::chrono::microseconds(static_cast<std::int64_t>(lag * 1e6));
}

}  // namespace kvevents::detail

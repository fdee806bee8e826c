#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>

namespace kvevents::detail {

// Wall-clock time from a batch's ts to now; nullopt when ts comes from the wire as no plausible
// time (not finite, in the future, over a day old).
inline std::optional<std::chrono::microseconds> plausible_lag_since(double ts) {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const double lag = now - ts;
    if (!std::isfinite(lag) || lag < 0 || lag > 86400.0)
        return std::nullopt;
    return std::chrono::microseconds(static_cast<std::int64_t>(lag * 1e6));
}

// The same, with an implausible ts counting as no lag.
inline std::chrono::microseconds lag_since(double ts) {
    return plausible_lag_since(ts).value_or(std::chrono::microseconds(0));
}

}  // namespace kvevents::detail

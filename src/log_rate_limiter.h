#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace kvevents::detail {

/// Lets at most N log lines through per window (one second unless given). A line let through
/// learns how many were held back since the previous one, so the log still says how much went
/// unsaid.
class LogRateLimiter {
public:
    explicit LogRateLimiter(int per_window,
                            std::chrono::steady_clock::duration window = std::chrono::seconds(1))
        : per_window_(per_window), window_(window) {}

    /// nullopt: stay quiet. Otherwise the number of lines suppressed since the last one allowed.
    std::optional<std::uint64_t> allow(std::chrono::steady_clock::time_point now) {
        if (now - window_start_ >= window_) {
            window_start_ = now;
            in_window_ = 0;
        }
        if (in_window_ >= per_window_) {
            ++suppressed_;
            return std::nullopt;
        }
        ++in_window_;
        const std::uint64_t held = suppressed_;
        suppressed_ = 0;
        return held;
    }

private:
    int per_window_;
    std::chrono::steady_clock::duration window_;
    int in_window_ = 0;
    std::uint64_t suppressed_ = 0;
    std::chrono::steady_clock::time_point window_start_{};
};

}  // namespace kvevents::detail

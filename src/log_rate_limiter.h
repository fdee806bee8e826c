#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace kvevents::detail {

/// Lets at most N log lines through per one-second window. A line let through learns how many
/// were held back since the previous one, so the log still says how much went unsaid.
class LogRateLimiter {
public:
    explicit LogRateLimiter(int per_second) : per_second_(per_second) {}

    /// nullopt: stay quiet. Otherwise the number of lines suppressed since the last one allowed.
    std::optional<std::uint64_t> allow(std::chrono::steady_clock::time_point now) {
        if (now - window_start_ >= std::chrono::seconds(1)) {
            window_start_ = now;
            in_window_ = 0;
        }
        if (in_window_ >= per_second_) {
            ++suppressed_;
            return std::nullopt;
        }
        ++in_window_;
        const std::uint64_t held = suppressed_;
        suppressed_ = 0;
        return held;
    }

private:
    int per_second_;
    int in_window_ = 0;
    std::uint64_t suppressed_ = 0;
    std::chrono::steady_clock::time_point window_start_{};
};

}  // namespace kvevents::detail

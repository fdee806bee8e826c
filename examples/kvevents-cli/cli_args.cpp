#include "cli_args.h"

#include <charconv>
#include <cmath>

namespace kvevents::cli {

void ArgCursor::fail(const std::string& message) const {
    throw UsageError("kvevents-cli " + command_ + ": " + message);
}

std::string ArgCursor::value_of(const std::string& flag) {
    if (done())
        fail(flag + " needs a value");
    return next();
}

std::uint64_t ArgCursor::unsigned_of(const std::string& flag,
                                     std::uint64_t min,
                                     std::uint64_t max) {
    const std::string text = value_of(flag);
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
        fail(flag + " needs a whole number from " + std::to_string(min) + " to " +
             std::to_string(max) + ", got '" + text + "'");
    }
    return value;
}

std::chrono::milliseconds ArgCursor::seconds_of(const std::string& flag) {
    const std::string text = value_of(flag);
    double seconds = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) ||
        seconds <= 0 || seconds > 1e7) {
        fail(flag + " needs a positive number of seconds, got '" + text + "'");
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

}  // namespace kvevents::cli

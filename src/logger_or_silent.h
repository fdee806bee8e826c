#pragma once

#include <memory>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

namespace kvevents::detail {

// The caller's logger, or one that drops everything: a private object, never registered, so
// spdlog's global registry stays untouched.
inline std::shared_ptr<spdlog::logger> logger_or_silent(std::shared_ptr<spdlog::logger> logger) {
    if (logger)
        return logger;
    return std::make_shared<spdlog::logger>("kvevents",
                                            std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace kvevents::detail

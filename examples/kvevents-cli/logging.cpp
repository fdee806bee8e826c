#include "logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace kvevents::cli {

std::shared_ptr<spdlog::logger> make_cli_logger(const std::string& level) {
    auto logger = std::make_shared<spdlog::logger>(
        "kvevents", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_level(spdlog::level::from_str(level));
    return logger;
}

}  // namespace kvevents::cli

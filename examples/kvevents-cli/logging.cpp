#include "logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli_args.h"

namespace kvevents::cli {

std::shared_ptr<spdlog::logger> make_cli_logger(const std::string& command,
                                                const std::string& level) {
    static const char* const kLevels[] = {"trace", "debug",    "info", "warn",
                                          "error", "critical", "off"};
    bool known = false;
    for (const char* l : kLevels) known |= level == l;
    if (!known) {
        throw UsageError("kvevents-cli " + command + ": --log-level must be one of trace, debug, " +
                         "info, warn, error, critical, off; got '" + level + "'");
    }
    auto logger = std::make_shared<spdlog::logger>(
        "kvevents", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_level(spdlog::level::from_str(level));
    return logger;
}

}  // namespace kvevents::cli

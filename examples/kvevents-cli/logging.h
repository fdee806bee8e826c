#pragma once

#include <memory>
#include <string>

#include <spdlog/fwd.h>

namespace kvevents::cli {

/// A stderr logger at `level`, one of spdlog's level names (add_log_level checks it). Not
/// registered with spdlog: only this CLI uses it.
std::shared_ptr<spdlog::logger> make_cli_logger(const std::string& level);

}  // namespace kvevents::cli

#pragma once

#include <memory>
#include <string>

#include <spdlog/fwd.h>

namespace kvevents::cli {

/// A stderr logger at `level` (trace, debug, info, warn, error, critical, off); throws
/// UsageError for an unknown level. Not registered with spdlog: only this CLI uses it.
std::shared_ptr<spdlog::logger> make_cli_logger(const std::string& command,
                                                const std::string& level);

}  // namespace kvevents::cli

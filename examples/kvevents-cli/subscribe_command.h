#pragma once

#include "cli_args.h"

namespace kvevents::cli {

/// `kvevents-cli subscribe ...`: follows one or more publishers and prints their events. Exit
/// status 0 after a clean stop, 2 for bad usage.
Command add_subscribe_command(CLI::App& app);

}  // namespace kvevents::cli

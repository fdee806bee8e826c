#pragma once

#include "cli_args.h"

namespace kvevents::cli {

/// `kvevents-cli decode`: captured payloads to JSON lines.
Command add_decode_command(CLI::App& app);

}  // namespace kvevents::cli

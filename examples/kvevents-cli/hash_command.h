#pragma once

#include "cli_args.h"

namespace kvevents::cli {

/// `kvevents-cli hash --hash-seed S --tokens 1,2,3 [...]`: prints one JSON line per full block
/// with its vLLM block hash.
Command add_hash_command(CLI::App& app);

}  // namespace kvevents::cli

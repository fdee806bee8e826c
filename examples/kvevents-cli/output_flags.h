#pragma once

// The flags that choose how events are printed, shared by the commands that print them.

#include "cli_args.h"
#include "event_json.h"
#include "stream_printer.h"

namespace kvevents::cli {

/// --hashes-as-strings: integer block hashes as decimal JSON strings.
CLI::Option* add_hash_style_flag(CLI::App& command, HashStyle& style);

/// --format, --notices, --verbose and --hashes-as-strings, for commands that print a stream.
void add_output_flags(CLI::App& command, PrinterOptions& options);

/// The checks between those flags, after parsing; a UsageError names the flags that clash.
void check_output_flags(const PrinterOptions& options);

}  // namespace kvevents::cli

#pragma once

#include "cli_args.h"

namespace kvevents::cli {

/// `kvevents-cli demo`: runs a mock vLLM publisher in-process with a realistic workload and
/// faults (dropped batches, an engine restart), follows it with a ZmqClient, prints the events,
/// and checks that every batch arrived exactly once in order. Exit status 0 when it did.
Command add_demo_command(CLI::App& app);

}  // namespace kvevents::cli

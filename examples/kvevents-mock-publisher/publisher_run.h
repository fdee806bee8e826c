#pragma once

#include <iosfwd>

#include "publisher_settings.h"

namespace kvevents::cli {

/// Runs the mock engine until SIGINT, SIGTERM or --duration: binds, prints the ready line on
/// `out`, publishes the workload with its faults, restarts on SIGHUP or SIGUSR1. Returns the exit
/// status: 0 after a clean stop, 2 when a socket cannot be opened, 1 when one cannot be opened
/// again after a restart.
int run_publisher(const PublisherSettings& settings, std::ostream& out, std::ostream& err);

}  // namespace kvevents::cli

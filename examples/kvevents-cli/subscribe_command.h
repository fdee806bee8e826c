#pragma once

#include <string>
#include <vector>

namespace kvevents::cli {

/// `kvevents-cli subscribe ...`: follows one or more publishers and prints their events.
/// Returns the exit status: 0 after a clean stop, 2 for bad usage.
int run_subscribe(const std::vector<std::string>& args);

}  // namespace kvevents::cli

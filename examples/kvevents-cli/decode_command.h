#pragma once

#include <string>
#include <vector>

namespace kvevents::cli {

/// `kvevents-cli decode [--raw] [FILE|-]`: prints one JSON line per event of each payload.
/// Returns the process exit status: 0 all decoded, 1 some payload failed, 2 bad usage.
int run_decode(const std::vector<std::string>& args);

}  // namespace kvevents::cli

#pragma once

#include <string>
#include <vector>

namespace kvevents::cli {

/// `kvevents-cli hash --hash-seed S --tokens 1,2,3 [...]`: prints one JSON line per full block
/// with its vLLM block hash. Returns the exit status: 0, or 2 for bad usage.
int run_hash(const std::vector<std::string>& args);

}  // namespace kvevents::cli

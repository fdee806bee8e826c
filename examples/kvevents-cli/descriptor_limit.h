#pragma once

#include <spdlog/fwd.h>

namespace kvevents::cli {

/// Raises the soft open-file limit to the hard one, saying so in the log: each publisher followed
/// takes about five descriptors (more while a replay runs), and the usual soft limit of 1024 runs
/// out near 200 publishers.
void raise_descriptor_limit(spdlog::logger& log);

}  // namespace kvevents::cli

#pragma once

// The flags that configure vLLM's block hashing, shared by `hash` and `subscribe --check-hashing`.

#include <optional>
#include <string>

#include <kvevents/block_hasher.h>

#include "cli_args.h"

namespace kvevents::cli {

struct HashingFlags {
    HashAlgorithm algorithm = HashAlgorithm::kSha256;  // vLLM's default
    std::optional<std::string> seed;
    std::size_t block_size = 16;  // vLLM's default on GPUs
    bool any_given = false;       // any of the flags below was on the command line
};

/// Adds --hash-algo, --hash-seed and --block-size to `command`, filling `flags`.
void add_hashing_flags(CLI::App& command, HashingFlags& flags);

/// The hasher the flags describe; a UsageError names what is missing or wrong.
BlockHasher make_hasher(const HashingFlags& flags);

}  // namespace kvevents::cli

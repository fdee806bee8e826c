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
};

/// The usage lines of the flags below.
extern const char* const kHashingFlagsUsage;

/// Takes `flag` (and its value) when it is one of --hash-algo, --hash-seed, --block-size.
bool take_hashing_flag(ArgCursor& cursor, const std::string& flag, HashingFlags& flags);

/// The hasher the flags describe; a UsageError names what is missing or wrong.
BlockHasher make_hasher(const HashingFlags& flags, const ArgCursor& cursor);

}  // namespace kvevents::cli

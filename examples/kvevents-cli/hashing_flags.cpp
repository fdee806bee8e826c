#include "hashing_flags.h"

#include <CLI/CLI.hpp>

namespace kvevents::cli {

void add_hashing_flags(CLI::App& command, HashingFlags& flags) {
    const std::string group = "Block hashing";
    command
        .add_option_function<std::string>(
            "--hash-algo",
            [&flags](const std::string& name) {
                const auto algorithm = hash_algorithm_from_name(name);
                if (!algorithm)
                    throw UsageError(
                        "--hash-algo must be sha256, sha256_cbor, xxhash or xxhash_cbor, got '" +
                        name + "'");
                flags.algorithm = *algorithm;
                flags.any_given = true;
            },
            "the engines' --prefix-caching-hash-algo: sha256 (default), sha256_cbor, xxhash or\n"
            "xxhash_cbor")
        ->type_name("A")
        ->group(group);
    command
        .add_option_function<std::string>(
            "--hash-seed",
            [&flags](const std::string& seed) {
                flags.seed = seed;
                flags.any_given = true;
            },
            "the engines' PYTHONHASHSEED (required: without it vLLM's hashes are random and\n"
            "cannot be reproduced)")
        ->type_name("S")
        ->group(group);
    add_whole_number(
        command, "--block-size", 1, BlockHasher::kMaxBlockSize,
        [&flags](std::uint64_t n) {
            flags.block_size = n;
            flags.any_given = true;
        },
        "the engines' block size in tokens (default 16)")
        ->group(group);
}

BlockHasher make_hasher(const HashingFlags& flags) {
    if (!flags.seed)
        throw UsageError("--hash-seed is required: give the PYTHONHASHSEED the engines run with");
    return BlockHasher(flags.algorithm, *flags.seed, flags.block_size);
}

}  // namespace kvevents::cli

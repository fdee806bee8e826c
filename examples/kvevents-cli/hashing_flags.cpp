#include "hashing_flags.h"

#include <cstdint>

namespace kvevents::cli {

const char* const kHashingFlagsUsage =
    "  --hash-algo A         the engines' --prefix-caching-hash-algo: sha256 (default),\n"
    "                        sha256_cbor, xxhash or xxhash_cbor\n"
    "  --hash-seed S         the engines' PYTHONHASHSEED (required: without it vLLM's hashes\n"
    "                        are random and cannot be reproduced)\n"
    "  --block-size N        the engines' block size in tokens (default 16)\n";

bool take_hashing_flag(ArgCursor& cursor, const std::string& flag, HashingFlags& flags) {
    if (flag == "--hash-algo") {
        const std::string name = cursor.value_of(flag);
        const auto algorithm = hash_algorithm_from_name(name);
        if (!algorithm)
            cursor.fail("--hash-algo must be sha256, sha256_cbor, xxhash or xxhash_cbor, got '" +
                        name + "'");
        flags.algorithm = *algorithm;
        return true;
    }
    if (flag == "--hash-seed") {
        flags.seed = cursor.value_of(flag);
        return true;
    }
    if (flag == "--block-size") {
        flags.block_size = cursor.unsigned_of(flag, 1, BlockHasher::kMaxBlockSize);
        return true;
    }
    return false;
}

BlockHasher make_hasher(const HashingFlags& flags, const ArgCursor& cursor) {
    if (!flags.seed)
        cursor.fail("--hash-seed is required: give the PYTHONHASHSEED the engines run with");
    return BlockHasher(flags.algorithm, *flags.seed, flags.block_size);
}

}  // namespace kvevents::cli

#pragma once

// BlockStored events as vLLM builds them for a prompt, with hashes from a BlockHasher: for a
// mock engine whose blocks a gateway's hashing and index must find. Header-only; needs
// kvevents::routing.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <kvevents/block_hasher.h>
#include <kvevents/events.h>

namespace kvevents::testing {

/// The hash vLLM sends for a digest: the 64-bit form by default, the whole digest with
/// VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0.
inline BlockHash wire_hash(const BlockDigest& d, bool whole_digest) {
    return whole_digest ? d.to_block_hash() : BlockHash::from_unsigned(d.to_u64());
}

/// The event for blocks [first, first + count) of `tokens` becoming full: chained to block
/// first - 1 (nil for the first block), with each block's extra keys.
inline BlockStored stored_blocks(const BlockHasher& hasher,
                                 const std::vector<std::int64_t>& tokens,
                                 const RequestKeys& keys,
                                 std::size_t first,
                                 std::size_t count,
                                 bool whole_digests = false) {
    const std::vector<BlockDigest> digests = hasher.hash_prompt(tokens, keys);
    const std::size_t block_size = hasher.block_size();
    BlockStored ev;
    for (std::size_t i = first; i < first + count; ++i)
        ev.block_hashes.push_back(wire_hash(digests.at(i), whole_digests));
    if (first > 0)
        ev.parent_block_hash = wire_hash(digests.at(first - 1), whole_digests);
    const auto from = tokens.begin() + static_cast<std::ptrdiff_t>(first * block_size);
    ev.token_ids.assign(from, from + static_cast<std::ptrdiff_t>(count * block_size));
    ev.block_size = static_cast<std::int32_t>(block_size);
    ev.set_medium("GPU");
    std::vector<ExtraKeyEntry> extra_keys;
    for (std::size_t i = first; i < first + count; ++i) {
        std::vector<Value> block_keys = hasher.block_extra_keys(keys, i);
        extra_keys.push_back(block_keys.empty() ? ExtraKeyEntry() : ExtraKeyEntry(block_keys));
    }
    ev.extras.ensure().extra_keys = std::move(extra_keys);
    if (keys.lora_name) {
        ev.lora_id = 1;
        ev.extras->lora_name = keys.lora_name;
    }
    return ev;
}

/// Token ids 0..n-1 offset by `base`: distinct prompts for distinct bases.
inline std::vector<std::int64_t> prompt_tokens(std::size_t n, std::int64_t base = 0) {
    std::vector<std::int64_t> t(n);
    for (std::size_t i = 0; i < n; ++i) t[i] = base + static_cast<std::int64_t>(i);
    return t;
}

}  // namespace kvevents::testing

#pragma once

// The two serialisations vLLM hashes a block with, written directly rather than through a
// general encoder: pickle protocol 5 as CPython's pickle.dumps writes it, and canonical CBOR as
// cbor2.dumps(x, canonical=True) writes it. Each takes the block's Python value
// (parent_digest, tuple(tokens), extra_keys or None) and replaces `out` with its bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <kvevents/value.h>

namespace kvevents::detail {

struct BlockValue {
    const std::uint8_t* parent;
    std::size_t parent_size;
    const std::int64_t* tokens;
    std::size_t token_count;
    const std::vector<Value>* extra_keys;  // null or empty: None
};

/// Throws std::invalid_argument for a float or map among the extra keys, and std::length_error
/// when the pickle would not fit one pickle frame (64 KiB).
void pickle_block(const BlockValue& block, std::string& out);
void cbor_block(const BlockValue& block, std::string& out);

/// One Python str on its own: what NONE_HASH hashes (the seed).
void pickle_string(std::string_view text, std::string& out);
void cbor_string(std::string_view text, std::string& out);

}  // namespace kvevents::detail

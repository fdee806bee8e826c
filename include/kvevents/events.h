#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <kvevents/block_hash.h>
#include <kvevents/value.h>

namespace kvevents {

/// How a BlockStored carried its token ids on the wire.
enum class TokenIdForm : std::uint8_t {
    /// `[t0, t1, ...]` integers (vLLM, SGLang without speculative decoding).
    kPlain,
    /// SGLang with EAGLE-style speculative decoding: `[[t0, t1], [t1, t2], ...]`. `token_ids` holds
    /// the first element of each pair (the block's own tokens, one per position) and
    /// `token_id_pair_seconds` the second elements, so the wire form can be rebuilt exactly.
    kBigram,
    /// TensorRT-LLM may send strings among the ids (`int | str`). `token_ids` is then empty and
    /// `token_id_strings` holds every entry as text (integers in decimal).
    kString,
};

/// One entry of `extra_keys`: the values mixed into one block's hash, or nullopt for none.
using ExtraKeyEntry = std::optional<std::vector<Value>>;

/// Blocks that became full and cached on a publisher.
struct BlockStored {
    // Declared so that constructing one in place (as the decoder does) runs only the member
    // initialisers: an implicit constructor would first zero all ~700 bytes under
    // value-initialisation.
    BlockStored() {}

    std::vector<BlockHash> block_hashes;
    std::optional<BlockHash> parent_block_hash;  // nullopt: the first block starts a sequence
    std::vector<std::int64_t> token_ids;
    TokenIdForm token_id_form = TokenIdForm::kPlain;
    std::vector<std::int64_t> token_id_pair_seconds;  // kBigram only
    std::vector<std::string> token_id_strings;        // kString only
    std::optional<std::int64_t> block_size;
    std::optional<std::int64_t> lora_id;
    std::optional<std::string> medium;  // "GPU", "CPU", "STORAGE", ...; nullopt means GPU in vLLM
    std::optional<std::string> lora_name;
    std::optional<std::vector<ExtraKeyEntry>> extra_keys;
    std::optional<std::int64_t> group_idx;
    std::optional<std::string> kv_cache_spec_kind;
    std::optional<std::int64_t> kv_cache_spec_sliding_window;
    std::optional<std::string> locality;  // "LOCAL" / "REMOTE"
    std::optional<Value> ownership;
    std::optional<Value> session_id;
    std::optional<std::string> cache_salt;  // SGLang's salted stores
    /// Map keys (and SGLang metadata entries) kvevents does not model, in wire order.
    std::vector<NamedValue> other_fields;
};

/// Blocks evicted from a publisher's cache.
struct BlockRemoved {
    BlockRemoved() {}  // see BlockStored()

    std::vector<BlockHash> block_hashes;
    std::optional<std::string> medium;
    std::optional<std::int64_t> group_idx;
    std::optional<std::string> locality;
    std::optional<Value> ownership;
    std::vector<NamedValue> other_fields;
};

/// The publisher dropped every cached block (prefix-cache reset, sleep, weight reload).
struct AllBlocksCleared {};

using Event = std::variant<BlockStored, BlockRemoved, AllBlocksCleared>;

/// One decoded msgpack payload.
struct EventBatch {
    double ts = 0;  // publisher wall clock, Unix seconds; not for ordering
    std::optional<std::int64_t> data_parallel_rank;
    std::vector<Event> events;
};

/// Name of an event's type as it appears on the wire ("BlockStored", ...).
const char* event_type_name(const Event& event);

/// Encodes token ids the way gateways feed them to a hash: 4 bytes each, big-endian
/// ({1, 2} becomes 00 00 00 01 00 00 00 02). Ids are truncated to their low 32 bits.
std::string token_ids_to_bytes(const std::vector<std::int64_t>& token_ids);

/// Helper for std::visit over an Event with one lambda per type.
template <class... Fs>
struct Overloaded : Fs... {
    using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace kvevents

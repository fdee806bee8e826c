#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

/// The tier a block is on. vLLM sends a string; the names below are held as a code, and any other
/// name (an LMCache device string, say) as kOther with the text in the event's extras.
enum class Medium : std::uint8_t {
    kUnset,  // nil or absent: vLLM means GPU
    kGpu,
    kCpu,
    kCpuPinned,
    kDisk,
    kExternal,
    kFs,
    kObj,
    kStorage,
    kSharedStorage,
    kOther,
};

/// The attention type of a block's KV-cache group (`kv_cache_spec_kind`), held like Medium.
enum class CacheSpecKind : std::uint8_t {
    kUnset,
    kFullAttention,
    kSlidingWindow,
    kChunkedLocalAttention,
    kMamba,
    kCrossAttention,
    kOther,
};

/// The wire name of a known code; "" for kUnset and kOther.
const char* to_string(Medium medium);
const char* to_string(CacheSpecKind kind);
/// The code for a wire name; kOther when the name is not one of the known ones.
Medium medium_from_name(std::string_view name);
CacheSpecKind cache_spec_kind_from_name(std::string_view name);

/// Owns an optional block of rarely present fields. Empty (no allocation) until one is set, so a
/// common event costs one pointer for all of them. Copies are deep.
template <class T>
class Extras {
public:
    Extras() = default;
    Extras(const Extras& other) : ptr_(other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr) {}
    Extras(Extras&&) noexcept = default;
    Extras& operator=(const Extras& other) {
        if (this != &other)
            ptr_ = other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr;
        return *this;
    }
    Extras& operator=(Extras&&) noexcept = default;

    explicit operator bool() const { return ptr_ != nullptr; }
    const T* operator->() const { return ptr_.get(); }
    T* operator->() { return ptr_.get(); }
    const T& operator*() const { return *ptr_; }
    T& operator*() { return *ptr_; }
    const T* get() const { return ptr_.get(); }
    /// The extras, or an empty block when none were sent: `ev.extras.or_empty().lora_name`.
    const T& or_empty() const {
        static const T kEmpty{};
        return ptr_ ? *ptr_ : kEmpty;
    }
    /// The extras, allocated on first use.
    T& ensure() {
        if (!ptr_)
            ptr_ = std::make_unique<T>();
        return *ptr_;
    }
    void reset() { ptr_.reset(); }

    /// Compares contents: no extras equals extras with every field unset.
    friend bool operator==(const Extras& a, const Extras& b) {
        return a.or_empty() == b.or_empty();
    }

private:
    std::unique_ptr<T> ptr_;
};

/// BlockStored fields most publishers leave unset.
struct BlockStoredExtras {
    std::vector<std::int64_t> token_id_pair_seconds;  // TokenIdForm::kBigram only
    std::vector<std::string> token_id_strings;        // TokenIdForm::kString only
    std::string medium_name;                          // Medium::kOther only
    std::string kv_cache_spec_kind_name;              // CacheSpecKind::kOther only
    std::optional<std::string> lora_name;
    std::optional<std::vector<ExtraKeyEntry>> extra_keys;
    std::optional<std::int64_t> kv_cache_spec_sliding_window;
    std::optional<std::string> locality;  // "LOCAL" / "REMOTE"
    std::optional<Value> ownership;
    std::optional<Value> session_id;
    std::optional<std::string> cache_salt;  // SGLang's salted stores
    /// Map keys (and SGLang metadata entries) kvevents does not model, in wire order.
    std::vector<NamedValue> other_fields;

    friend bool operator==(const BlockStoredExtras& a, const BlockStoredExtras& b);
};

/// BlockRemoved fields most publishers leave unset.
struct BlockRemovedExtras {
    std::string medium_name;  // Medium::kOther only
    std::optional<std::string> locality;
    std::optional<Value> ownership;
    std::vector<NamedValue> other_fields;

    friend bool operator==(const BlockRemovedExtras& a, const BlockRemovedExtras& b);
};

/// Blocks that became full and cached on a publisher. The fields every publisher sends are inline;
/// the rest are in `extras`, which is empty unless one of them was sent.
struct BlockStored {
    // Declared so that constructing one in place (as the decoder does) runs only the member
    // initialisers: an implicit constructor would first zero the whole event under
    // value-initialisation.
    BlockStored() {}  // NOLINT(modernize-use-equals-default): `= default` would zero it

    std::vector<BlockHash> block_hashes;
    std::vector<std::int64_t> token_ids;
    std::optional<BlockHash> parent_block_hash;  // nullopt: the first block starts a sequence
    std::optional<std::int64_t> lora_id;
    Extras<BlockStoredExtras> extras;
    std::optional<std::int32_t> block_size;
    std::optional<std::int16_t> group_idx;  // KV-cache group, for hybrid attention models
    Medium medium = Medium::kUnset;
    CacheSpecKind kv_cache_spec_kind = CacheSpecKind::kUnset;
    TokenIdForm token_id_form = TokenIdForm::kPlain;

    /// The medium as the publisher named it; "" when unset.
    std::string_view medium_name() const;
    std::string_view kv_cache_spec_kind_name() const;
    /// Sets the code for a known name, or kOther and the name in extras; nullopt unsets.
    void set_medium(std::optional<std::string_view> name);
    void set_kv_cache_spec_kind(std::optional<std::string_view> name);

    friend bool operator==(const BlockStored& a, const BlockStored& b);
};

/// Blocks evicted from a publisher's cache.
struct BlockRemoved {
    BlockRemoved() {}  // NOLINT(modernize-use-equals-default): see BlockStored()

    std::vector<BlockHash> block_hashes;
    Extras<BlockRemovedExtras> extras;
    std::optional<std::int16_t> group_idx;
    Medium medium = Medium::kUnset;

    std::string_view medium_name() const;
    void set_medium(std::optional<std::string_view> name);

    friend bool operator==(const BlockRemoved& a, const BlockRemoved& b);
};

/// The publisher dropped every cached block (prefix-cache reset, sleep, weight reload).
struct AllBlocksCleared {
    friend bool operator==(const AllBlocksCleared&, const AllBlocksCleared&) { return true; }
};

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

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include <msgpack.hpp>

#include <kvevents/testing/encoder.h>

namespace kvevents::testing {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

// Number of positions (tag included) each era's positional events have.
struct PositionalLayout {
    std::uint32_t stored;
    std::uint32_t removed;
};

PositionalLayout layout_of(WireEra era) {
    switch (era) {
        case WireEra::kV0_9:
        case WireEra::kDataParallel:
            return {6, 2};
        case WireEra::kMedium:
        case WireEra::kSglang:
            return {7, 3};
        case WireEra::kLoraName:
            return {8, 3};
        case WireEra::kExtraKeys:
            return {9, 3};
        case WireEra::kGroupIdx:
            return {10, 4};
        case WireEra::kKvCacheSpec:
        case WireEra::kMapEvents:
            return {12, 4};
    }
    return {12, 4};
}

// float64 written by hand, as msgspec writes every float: msgpack-cxx's pack_double first tries
// the value as an integer, a conversion that is undefined for doubles beyond the uint64 range.
void pack_float64(Packer& p, double value) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    char bytes[9];
    bytes[0] = static_cast<char>(0xcb);
    for (int i = 8; i >= 1; --i) {
        bytes[i] = static_cast<char>(bits & 0xff);
        bits >>= 8;
    }
    p.pack_str_body(bytes, sizeof bytes);  // appends raw bytes
}

void pack_string(Packer& p, std::string_view s) {
    p.pack_str(static_cast<std::uint32_t>(s.size()));
    p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_value(Packer& p, const Value& v) {
    switch (v.kind) {
        case Value::Kind::kNil:
            p.pack_nil();
            break;
        case Value::Kind::kBool:
            v.boolean ? p.pack_true() : p.pack_false();
            break;
        case Value::Kind::kInt:
            p.pack_int64(v.int_value);
            break;
        case Value::Kind::kUint:
            p.pack_uint64(v.uint_value);
            break;
        case Value::Kind::kFloat:
            pack_float64(p, v.float_value);
            break;
        case Value::Kind::kString:
            pack_string(p, v.text);
            break;
        case Value::Kind::kBytes:
            p.pack_bin(static_cast<std::uint32_t>(v.text.size()));
            p.pack_bin_body(v.text.data(), static_cast<std::uint32_t>(v.text.size()));
            break;
        case Value::Kind::kArray:
            p.pack_array(static_cast<std::uint32_t>(v.items.size()));
            for (const Value& item : v.items) pack_value(p, item);
            break;
        case Value::Kind::kMap:
            p.pack_map(static_cast<std::uint32_t>(v.items.size() / 2));
            for (const Value& item : v.items) pack_value(p, item);
            break;
    }
}

void pack_hash(Packer& p, const BlockHash& h) {
    if (h.is_digest()) {
        p.pack_bin(static_cast<std::uint32_t>(h.digest_size()));
        p.pack_bin_body(reinterpret_cast<const char*>(h.digest_data()),
                        static_cast<std::uint32_t>(h.digest_size()));
    } else if (h.is_negative()) {
        p.pack_int64(static_cast<std::int64_t>(h.to_u64()));
    } else {
        p.pack_uint64(h.to_u64());
    }
}

void pack_hashes(Packer& p, const std::vector<BlockHash>& hashes) {
    p.pack_array(static_cast<std::uint32_t>(hashes.size()));
    for (const BlockHash& h : hashes) pack_hash(p, h);
}

// NOLINTBEGIN(bugprone-branch-clone): an instantiation keeps one branch of the `if constexpr`s,
// and clang-tidy 14 sees the discarded ones as clones of it.
template <class T>
void pack_optional(Packer& p, const std::optional<T>& v) {
    if (!v) {
        p.pack_nil();
    } else if constexpr (std::is_same_v<T, std::string>) {
        pack_string(p, *v);
    } else if constexpr (std::is_same_v<T, Value>) {
        pack_value(p, *v);
    } else if constexpr (std::is_same_v<T, BlockHash>) {
        pack_hash(p, *v);
    } else {
        p.pack_int64(*v);
    }
}
// NOLINTEND(bugprone-branch-clone)

template <class Code>
void pack_name(Packer& p, Code code, std::string_view name) {
    if (code == Code::kUnset) {
        p.pack_nil();
    } else {
        pack_string(p, name);
    }
}

void pack_token_ids(Packer& p, const BlockStored& ev) {
    const BlockStoredExtras& x = ev.extras.or_empty();
    switch (ev.token_id_form) {
        case TokenIdForm::kPlain:
            p.pack_array(static_cast<std::uint32_t>(ev.token_ids.size()));
            for (const std::int64_t t : ev.token_ids) p.pack_int64(t);
            break;
        case TokenIdForm::kBigram:
            p.pack_array(static_cast<std::uint32_t>(ev.token_ids.size()));
            for (std::size_t i = 0; i < ev.token_ids.size(); ++i) {
                p.pack_array(2);
                p.pack_int64(ev.token_ids[i]);
                p.pack_int64(i < x.token_id_pair_seconds.size() ? x.token_id_pair_seconds[i] : 0);
            }
            break;
        case TokenIdForm::kString:
            p.pack_array(static_cast<std::uint32_t>(x.token_id_strings.size()));
            for (const std::string& t : x.token_id_strings) pack_string(p, t);
            break;
    }
}

void pack_extra_keys(Packer& p, const std::optional<std::vector<ExtraKeyEntry>>& keys) {
    if (!keys) {
        p.pack_nil();
        return;
    }
    p.pack_array(static_cast<std::uint32_t>(keys->size()));
    for (const ExtraKeyEntry& entry : *keys) {
        if (!entry) {
            p.pack_nil();
            continue;
        }
        p.pack_array(static_cast<std::uint32_t>(entry->size()));
        for (const Value& v : *entry) pack_value(p, v);
    }
}

// Writes BlockStored's field at `position` (1-based; the tag is 0).
void pack_stored_field(Packer& p, const BlockStored& ev, std::uint32_t position) {
    const BlockStoredExtras& x = ev.extras.or_empty();
    switch (position) {
        case 1:
            pack_hashes(p, ev.block_hashes);
            break;
        case 2:
            pack_optional(p, ev.parent_block_hash);
            break;
        case 3:
            pack_token_ids(p, ev);
            break;
        case 4:
            pack_optional(p, ev.block_size);
            break;
        case 5:
            pack_optional(p, ev.lora_id);
            break;
        case 6:
            pack_name(p, ev.medium, ev.medium_name());
            break;
        case 7:
            pack_optional(p, x.lora_name);
            break;
        case 8:
            pack_extra_keys(p, x.extra_keys);
            break;
        case 9:
            pack_optional(p, ev.group_idx);
            break;
        case 10:
            pack_name(p, ev.kv_cache_spec_kind, ev.kv_cache_spec_kind_name());
            break;
        case 11:
            pack_optional(p, x.kv_cache_spec_sliding_window);
            break;
        default:
            p.pack_nil();
            break;
    }
}

void pack_removed_field(Packer& p, const BlockRemoved& ev, std::uint32_t position) {
    switch (position) {
        case 1:
            pack_hashes(p, ev.block_hashes);
            break;
        case 2:
            pack_name(p, ev.medium, ev.medium_name());
            break;
        case 3:
            pack_optional(p, ev.group_idx);
            break;
        default:
            p.pack_nil();
            break;
    }
}

void pack_positional(Packer& p, const Event& event, WireEra era) {
    const PositionalLayout layout = layout_of(era);
    std::visit(Overloaded{
                   [&](const BlockStored& ev) {
                       const auto& salt = ev.extras.or_empty().cache_salt;
                       const bool salted = era == WireEra::kSglang && salt.has_value();
                       p.pack_array(layout.stored + (salted ? 1 : 0));
                       pack_string(p, "BlockStored");
                       for (std::uint32_t pos = 1; pos < layout.stored; ++pos) {
                           pack_stored_field(p, ev, pos);
                       }
                       if (salted) {
                           p.pack_map(1);
                           pack_string(p, "cache_salt");
                           pack_string(p, *salt);
                       }
                   },
                   [&](const BlockRemoved& ev) {
                       p.pack_array(layout.removed);
                       pack_string(p, "BlockRemoved");
                       for (std::uint32_t pos = 1; pos < layout.removed; ++pos) {
                           pack_removed_field(p, ev, pos);
                       }
                   },
                   [&](const AllBlocksCleared&) {
                       p.pack_array(1);
                       pack_string(p, "AllBlocksCleared");
                   },
               },
               event);
}

// A map event's entries: required fields always, optional ones only when set (omit_defaults).
class MapWriter {
public:
    explicit MapWriter(Packer& p) : p_(p) {}

    template <class F>
    void required(std::string_view key, F&& write) {
        entries_.push_back({key, std::forward<F>(write)});
    }
    template <class T>
    void optional(std::string_view key, const std::optional<T>& v) {
        if (v)
            required(key, [&] { pack_optional(p_, v); });
    }
    // Kept fields whose name is already a key of this event are left out: SGLang's metadata
    // map may carry such names, and a map event cannot hold one key twice.
    void others(const std::vector<NamedValue>& fields) {
        for (const NamedValue& nv : fields) {
            const bool taken =
                nv.name == "type" ||
                std::any_of(entries_.begin(), entries_.end(),
                            [&](const auto& entry) { return nv.name == entry.first; }) ||
                std::find(reserved_.begin(), reserved_.end(), nv.name) != reserved_.end();
            if (!taken)
                required(nv.name, [&] { pack_value(p_, nv.value); });
        }
    }
    /// Names this event type may carry even when they were not written (absent optionals).
    void reserve_names(std::vector<std::string> names) { reserved_ = std::move(names); }
    void finish(const char* type) {
        p_.pack_map(static_cast<std::uint32_t>(entries_.size() + 1));
        pack_string(p_, "type");
        pack_string(p_, type);
        for (auto& [key, write] : entries_) {
            pack_string(p_, key);
            write();
        }
    }

private:
    Packer& p_;
    std::vector<std::pair<std::string_view, std::function<void()>>> entries_;
    std::vector<std::string> reserved_;
};

void pack_map_event(Packer& p, const Event& event) {
    MapWriter w(p);
    std::visit(Overloaded{
                   [&](const BlockStored& ev) {
                       const BlockStoredExtras& x = ev.extras.or_empty();
                       w.required("block_hashes", [&] { pack_hashes(p, ev.block_hashes); });
                       w.required("parent_block_hash",
                                  [&] { pack_optional(p, ev.parent_block_hash); });
                       w.required("token_ids", [&] { pack_token_ids(p, ev); });
                       w.required("block_size", [&] { pack_optional(p, ev.block_size); });
                       w.required("lora_id", [&] { pack_optional(p, ev.lora_id); });
                       w.required("medium", [&] { pack_name(p, ev.medium, ev.medium_name()); });
                       w.required("lora_name", [&] { pack_optional(p, x.lora_name); });
                       if (x.extra_keys) {
                           w.required("extra_keys", [&] { pack_extra_keys(p, x.extra_keys); });
                       }
                       w.optional("group_idx", ev.group_idx);
                       if (ev.kv_cache_spec_kind != CacheSpecKind::kUnset) {
                           w.required("kv_cache_spec_kind", [&] {
                               pack_name(p, ev.kv_cache_spec_kind, ev.kv_cache_spec_kind_name());
                           });
                       }
                       w.optional("kv_cache_spec_sliding_window", x.kv_cache_spec_sliding_window);
                       w.optional("locality", x.locality);
                       w.optional("ownership", x.ownership);
                       w.optional("session_id", x.session_id);
                       w.optional("cache_salt", x.cache_salt);
                       w.reserve_names({"extra_keys", "group_idx", "kv_cache_spec_kind",
                                        "kv_cache_spec_sliding_window", "locality", "ownership",
                                        "session_id", "cache_salt"});
                       w.others(x.other_fields);
                       w.finish("BlockStored");
                   },
                   [&](const BlockRemoved& ev) {
                       w.required("block_hashes", [&] { pack_hashes(p, ev.block_hashes); });
                       const BlockRemovedExtras& x = ev.extras.or_empty();
                       w.required("medium", [&] { pack_name(p, ev.medium, ev.medium_name()); });
                       w.optional("group_idx", ev.group_idx);
                       w.optional("locality", x.locality);
                       w.optional("ownership", x.ownership);
                       w.reserve_names({"group_idx", "locality", "ownership"});
                       w.others(x.other_fields);
                       w.finish("BlockRemoved");
                   },
                   [&](const AllBlocksCleared&) { w.finish("AllBlocksCleared"); },
               },
               event);
}

void pack_events(Packer& p, const EventBatch& batch, WireEra era) {
    p.pack_array(static_cast<std::uint32_t>(batch.events.size()));
    for (const Event& event : batch.events) {
        if (era == WireEra::kMapEvents) {
            pack_map_event(p, event);
        } else {
            pack_positional(p, event, era);
        }
    }
}

}  // namespace

std::string encode_batch(const EventBatch& batch, const EncodeOptions& options) {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    const bool has_rank_field = options.era != WireEra::kV0_9;
    if (options.map_envelope) {
        p.pack_map(has_rank_field ? 3 : 2);
        pack_string(p, "ts");
        pack_float64(p, batch.ts);
        pack_string(p, "events");
        pack_events(p, batch, options.era);
        if (has_rank_field) {
            pack_string(p, "data_parallel_rank");
            pack_optional(p, batch.data_parallel_rank);
        }
    } else {
        p.pack_array(has_rank_field ? 3 : 2);
        pack_float64(p, batch.ts);
        pack_events(p, batch, options.era);
        if (has_rank_field) {
            pack_optional(p, batch.data_parallel_rank);
        }
    }
    return std::string(buffer.data(), buffer.size());
}

}  // namespace kvevents::testing

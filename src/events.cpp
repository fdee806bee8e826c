#include <array>
#include <tuple>
#include <variant>

#include <kvevents/events.h>

namespace kvevents {

namespace {

// Names in code order, index 0 (kUnset) included; kOther has no name.
// string_view, so that matching a name compares lengths first and never counts characters.
constexpr std::array<std::string_view, 10> kMediumNames = {
    "", "GPU", "CPU", "CPU_PINNED", "DISK", "EXTERNAL", "FS", "OBJ", "STORAGE", "SHARED_STORAGE"};
constexpr std::array<std::string_view, 6> kCacheSpecKindNames = {
    "", "full_attention", "sliding_window", "chunked_local_attention", "mamba", "cross_attention"};

template <class Code, std::size_t N>
const char* name_of(Code code, const std::array<std::string_view, N>& names) {
    const auto index = static_cast<std::size_t>(code);
    return index < N ? names[index].data() : "";  // each is a whole literal: NUL-terminated
}

template <class Code, std::size_t N>
Code code_of(std::string_view name, const std::array<std::string_view, N>& names, Code other) {
    for (std::size_t i = 1; i < N; ++i) {
        if (name == names[i])
            return static_cast<Code>(i);
    }
    return other;
}

// A code field and, for kOther, its text in the extras.
template <class Code, class ExtrasT>
std::string_view named_code(Code code,
                            Code other,
                            const Extras<ExtrasT>& extras,
                            std::string ExtrasT::*text) {
    if (code == other)
        return extras ? std::string_view((*extras).*text) : std::string_view();
    return to_string(code);
}

template <class Code, class ExtrasT>
void set_named_code(std::optional<std::string_view> name,
                    Code& code,
                    Code (*from_name)(std::string_view),
                    Code other,
                    Extras<ExtrasT>& extras,
                    std::string ExtrasT::*text) {
    code = name ? from_name(*name) : Code::kUnset;
    if (code == other) {
        (extras.ensure().*text).assign(name->data(), name->size());
    } else if (extras) {
        ((*extras).*text).clear();
    }
}

}  // namespace

const char* to_string(Medium medium) {
    return name_of(medium, kMediumNames);
}

const char* to_string(CacheSpecKind kind) {
    return name_of(kind, kCacheSpecKindNames);
}

Medium medium_from_name(std::string_view name) {
    return code_of(name, kMediumNames, Medium::kOther);
}

CacheSpecKind cache_spec_kind_from_name(std::string_view name) {
    return code_of(name, kCacheSpecKindNames, CacheSpecKind::kOther);
}

std::string_view BlockStored::medium_name() const {
    return named_code(medium, Medium::kOther, extras, &BlockStoredExtras::medium_name);
}

std::string_view BlockStored::kv_cache_spec_kind_name() const {
    return named_code(kv_cache_spec_kind, CacheSpecKind::kOther, extras,
                      &BlockStoredExtras::kv_cache_spec_kind_name);
}

void BlockStored::set_medium(std::optional<std::string_view> name) {
    set_named_code(name, medium, medium_from_name, Medium::kOther, extras,
                   &BlockStoredExtras::medium_name);
}

void BlockStored::set_kv_cache_spec_kind(std::optional<std::string_view> name) {
    set_named_code(name, kv_cache_spec_kind, cache_spec_kind_from_name, CacheSpecKind::kOther,
                   extras, &BlockStoredExtras::kv_cache_spec_kind_name);
}

std::string_view BlockRemoved::medium_name() const {
    return named_code(medium, Medium::kOther, extras, &BlockRemovedExtras::medium_name);
}

void BlockRemoved::set_medium(std::optional<std::string_view> name) {
    set_named_code(name, medium, medium_from_name, Medium::kOther, extras,
                   &BlockRemovedExtras::medium_name);
}

bool operator==(const BlockStoredExtras& a, const BlockStoredExtras& b) {
    const auto fields = [](const BlockStoredExtras& e) {
        return std::tie(e.token_id_pair_seconds, e.token_id_strings, e.medium_name,
                        e.kv_cache_spec_kind_name, e.lora_name, e.extra_keys,
                        e.kv_cache_spec_sliding_window, e.locality, e.ownership, e.session_id,
                        e.cache_salt, e.other_fields);
    };
    return fields(a) == fields(b);
}

bool operator==(const BlockRemovedExtras& a, const BlockRemovedExtras& b) {
    const auto fields = [](const BlockRemovedExtras& e) {
        return std::tie(e.medium_name, e.locality, e.ownership, e.other_fields);
    };
    return fields(a) == fields(b);
}

bool operator==(const BlockStored& a, const BlockStored& b) {
    const auto fields = [](const BlockStored& e) {
        return std::tie(e.block_hashes, e.token_ids, e.parent_block_hash, e.lora_id, e.extras,
                        e.block_size, e.group_idx, e.medium, e.kv_cache_spec_kind, e.token_id_form);
    };
    return fields(a) == fields(b);
}

bool operator==(const BlockRemoved& a, const BlockRemoved& b) {
    const auto fields = [](const BlockRemoved& e) {
        return std::tie(e.block_hashes, e.extras, e.group_idx, e.medium);
    };
    return fields(a) == fields(b);
}

const char* event_type_name(const Event& event) {
    return std::visit(Overloaded{
                          [](const BlockStored&) { return "BlockStored"; },
                          [](const BlockRemoved&) { return "BlockRemoved"; },
                          [](const AllBlocksCleared&) { return "AllBlocksCleared"; },
                      },
                      event);
}

std::string token_ids_to_bytes(const std::vector<std::int64_t>& token_ids) {
    std::string out(token_ids.size() * 4, '\0');
    for (std::size_t i = 0; i < token_ids.size(); ++i) {
        const auto id = static_cast<std::uint32_t>(token_ids[i]);
        out[4 * i] = static_cast<char>(id >> 24);
        out[4 * i + 1] = static_cast<char>(id >> 16);
        out[4 * i + 2] = static_cast<char>(id >> 8);
        out[4 * i + 3] = static_cast<char>(id);
    }
    return out;
}

}  // namespace kvevents

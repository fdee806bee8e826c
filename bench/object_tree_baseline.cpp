#include "object_tree_baseline.h"

#include <string>
#include <string_view>

#include <msgpack.hpp>

namespace kvevents::bench {
namespace {

BlockHash to_hash(const msgpack::object& o) {
    if (o.type == msgpack::type::BIN) {
        return BlockHash::from_digest(reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr),
                                      o.via.bin.size);
    }
    if (o.type == msgpack::type::NEGATIVE_INTEGER)
        return BlockHash::from_signed(o.via.i64);
    return BlockHash::from_unsigned(o.as<std::uint64_t>());
}

std::vector<BlockHash> to_hashes(const msgpack::object& o) {
    std::vector<BlockHash> out;
    out.reserve(o.via.array.size);
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) out.push_back(to_hash(o.via.array.ptr[i]));
    return out;
}

template <class T>
std::optional<T> opt(const msgpack::object& o) {
    if (o.is_nil())
        return std::nullopt;
    return o.as<T>();
}

void set_stored(BlockStored& ev, std::string_view key, const msgpack::object& v) {
    if (key == "block_hashes")
        ev.block_hashes = to_hashes(v);
    else if (key == "parent_block_hash")
        ev.parent_block_hash = v.is_nil() ? std::nullopt : std::optional(to_hash(v));
    else if (key == "token_ids")
        ev.token_ids = v.as<std::vector<std::int64_t>>();
    else if (key == "block_size")
        ev.block_size = opt<std::int32_t>(v);
    else if (key == "lora_id")
        ev.lora_id = opt<std::int64_t>(v);
    else if (key == "medium")
        ev.set_medium(opt<std::string>(v));
    else if (key == "lora_name" && !v.is_nil())
        ev.extras.ensure().lora_name = v.as<std::string>();
    else if (key == "group_idx")
        ev.group_idx = opt<std::int16_t>(v);
    else if (key == "kv_cache_spec_kind")
        ev.set_kv_cache_spec_kind(opt<std::string>(v));
    else if (key == "kv_cache_spec_sliding_window" && !v.is_nil())
        ev.extras.ensure().kv_cache_spec_sliding_window = v.as<std::int64_t>();
}

void set_removed(BlockRemoved& ev, std::string_view key, const msgpack::object& v) {
    if (key == "block_hashes")
        ev.block_hashes = to_hashes(v);
    else if (key == "medium")
        ev.set_medium(opt<std::string>(v));
    else if (key == "group_idx")
        ev.group_idx = opt<std::int16_t>(v);
}

constexpr const char* kStoredOrder[] = {
    "",          "block_hashes",       "parent_block_hash",
    "token_ids", "block_size",         "lora_id",
    "medium",    "lora_name",          "extra_keys",
    "group_idx", "kv_cache_spec_kind", "kv_cache_spec_sliding_window"};
constexpr const char* kRemovedOrder[] = {"", "block_hashes", "medium", "group_idx"};

Event to_event(const msgpack::object& o) {
    if (o.type == msgpack::type::MAP) {
        std::string_view type;
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            if (o.via.map.ptr[i].key.as<std::string_view>() == "type") {
                type = o.via.map.ptr[i].val.as<std::string_view>();
            }
        }
        if (type == "BlockStored") {
            BlockStored ev;
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                set_stored(ev, o.via.map.ptr[i].key.as<std::string_view>(), o.via.map.ptr[i].val);
            }
            return ev;
        }
        if (type == "BlockRemoved") {
            BlockRemoved ev;
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                set_removed(ev, o.via.map.ptr[i].key.as<std::string_view>(), o.via.map.ptr[i].val);
            }
            return ev;
        }
        return AllBlocksCleared{};
    }
    const auto& a = o.via.array;
    const auto type = a.ptr[0].as<std::string_view>();
    if (type == "BlockStored") {
        BlockStored ev;
        for (std::uint32_t i = 1; i < a.size && i < 12; ++i)
            set_stored(ev, kStoredOrder[i], a.ptr[i]);
        return ev;
    }
    if (type == "BlockRemoved") {
        BlockRemoved ev;
        for (std::uint32_t i = 1; i < a.size && i < 4; ++i)
            set_removed(ev, kRemovedOrder[i], a.ptr[i]);
        return ev;
    }
    return AllBlocksCleared{};
}

}  // namespace

EventBatch decode_via_object_tree(const char* data, std::size_t size) {
    const msgpack::object_handle handle = msgpack::unpack(data, size);
    const msgpack::object& root = handle.get();
    EventBatch batch;
    batch.ts = root.via.array.ptr[0].as<double>();
    const msgpack::object& events = root.via.array.ptr[1];
    batch.events.reserve(events.via.array.size);
    for (std::uint32_t i = 0; i < events.via.array.size; ++i) {
        batch.events.push_back(to_event(events.via.array.ptr[i]));
    }
    if (root.via.array.size > 2)
        batch.data_parallel_rank = opt<std::int64_t>(root.via.array.ptr[2]);
    return batch;
}

}  // namespace kvevents::bench

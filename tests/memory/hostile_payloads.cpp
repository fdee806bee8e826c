#include "hostile_payloads.h"

#include <string_view>

#include "../unit/msgpack_builder.h"

namespace kvevents::test {
namespace {

constexpr std::uint64_t kHash = 0xd1b54a32d192ed03ULL;  // takes the full 9 bytes, as real hashes do

// [ts, events] around already-encoded events.
std::string envelope(std::uint32_t count, const std::string& events) {
    MsgBuilder b;
    b.array(2).f64(1.0).array(count).raw(events);
    return b.bytes();
}

// A map BlockStored with one hash whose `key` holds `value` (already encoded).
std::string stored_with_key(std::string_view key, const std::string& value) {
    MsgBuilder b;
    b.map(3).str("type").str("BlockStored").str("block_hashes").array(1).uint(kHash);
    b.str(key).raw(value);
    return b.bytes();
}

std::string repeated(const std::string& unit, std::size_t count) {
    std::string out;
    out.reserve(unit.size() * count);
    for (std::size_t i = 0; i < count; ++i) out += unit;
    return out;
}

// 31 nested arrays, each declaring as many elements as there are bytes left, over a run of nils.
HostilePayload deep_nesting(std::size_t size) {
    const std::size_t nils = size - 256;
    MsgBuilder value;
    for (int level = 0; level < 31; ++level)
        value.hex("dd").raw(std::string("\x00\x0f\xff\x00", 4));
    value.array(static_cast<std::uint32_t>(nils)).raw(std::string(nils, '\xc0'));
    return {"deep nesting", envelope(1, stored_with_key("future", value.bytes()))};
}

// The events array declares an element per byte and holds only nils.
HostilePayload huge_event_count(std::size_t size) {
    const std::size_t nils = size - 16;
    return {"huge event count",
            envelope(static_cast<std::uint32_t>(nils), std::string(nils, '\xc0'))};
}

// A hash list declaring an element per byte, then running out.
HostilePayload huge_hash_count(std::size_t size) {
    MsgBuilder ev;
    ev.array(2).str("BlockRemoved").array(static_cast<std::uint32_t>(size - 32));
    ev.raw(std::string(size / 2, '\x01'));
    return {"huge hash count", envelope(1, ev.bytes())};
}

// An unknown key holding one flat array of small ints.
HostilePayload flat_unknown_array(std::size_t size) {
    const std::size_t ints = size - 128;
    MsgBuilder value;
    value.array(static_cast<std::uint32_t>(ints)).raw(std::string(ints, '\x07'));
    return {"flat array under an unknown key",
            envelope(1, stored_with_key("future", value.bytes()))};
}

// Many unknown keys, each with a 20-byte name and a 20-byte string: costs what a real extension
// field would, and must decode.
HostilePayload many_unknown_keys(std::size_t size) {
    const std::size_t keys = (size - 64) / 42;
    MsgBuilder ev;
    ev.map(static_cast<std::uint32_t>(keys + 2)).str("type").str("BlockStored");
    ev.str("block_hashes").array(1).uint(kHash);
    for (std::size_t i = 0; i < keys; ++i) {
        std::string name = "future_" + std::to_string(1000000000000 + i);
        ev.str(name).str(name);
    }
    return {"many unknown keys", envelope(1, ev.bytes()), true};
}

// extra_keys with an entry per two bytes.
HostilePayload wide_extra_keys(std::size_t size) {
    const std::size_t entries = (size - 64) / 2;
    MsgBuilder keys;
    keys.array(static_cast<std::uint32_t>(entries))
        .raw(repeated(std::string("\x91\xc0", 2), entries));
    return {"wide extra_keys", envelope(1, stored_with_key("extra_keys", keys.bytes()))};
}

// extra_keys whose one tuple nests 30 levels deep, each declaring an element per byte left.
HostilePayload deep_extra_keys(std::size_t size) {
    const std::size_t nils = size - 256;
    MsgBuilder keys;
    keys.array(1);
    for (int level = 0; level < 30; ++level) keys.hex("dd").raw(std::string("\x00\x0f\xff\x00", 4));
    keys.array(static_cast<std::uint32_t>(nils)).raw(std::string(nils, '\xc0'));
    return {"deep extra_keys", envelope(1, stored_with_key("extra_keys", keys.bytes()))};
}

// The events of a busy engine's eviction burst: one 64-bit hash each, oldest layout.
HostilePayload many_small_removed(std::size_t size) {
    MsgBuilder one;
    one.array(2).str("BlockRemoved").array(1).uint(kHash);
    const std::size_t count = (size - 16) / one.bytes().size();
    return {"many one-hash BlockRemoved",
            envelope(static_cast<std::uint32_t>(count), repeated(one.bytes(), count)), true};
}

// The same in vLLM's current map layout.
HostilePayload many_small_removed_maps(std::size_t size) {
    MsgBuilder one;
    one.map(3).str("type").str("BlockRemoved").str("block_hashes").array(1).uint(kHash);
    one.str("medium").str("GPU");
    const std::size_t count = (size - 16) / one.bytes().size();
    return {"many one-hash BlockRemoved maps",
            envelope(static_cast<std::uint32_t>(count), repeated(one.bytes(), count)), true};
}

// The smallest events that are kept: ["BlockStored", []].
HostilePayload many_empty_stored(std::size_t size) {
    MsgBuilder one;
    one.array(2).str("BlockStored").array(0);
    const std::size_t count = (size - 16) / one.bytes().size();
    return {"many empty BlockStored",
            envelope(static_cast<std::uint32_t>(count), repeated(one.bytes(), count))};
}

// One store whose token ids are all one-byte integers.
HostilePayload small_token_flood(std::size_t size) {
    const std::size_t tokens = size - 64;
    MsgBuilder ev;
    ev.array(4).str("BlockStored").array(1).uint(kHash).nil();
    ev.array(static_cast<std::uint32_t>(tokens)).raw(std::string(tokens, '\x05'));
    return {"one-byte token ids", envelope(1, ev.bytes()), true};
}

// Token ids sent as one-character strings (TensorRT-LLM allows str).
HostilePayload string_token_flood(std::size_t size) {
    const std::size_t tokens = (size - 64) / 2;
    MsgBuilder ev;
    ev.array(4).str("BlockStored").array(1).uint(kHash).nil();
    ev.array(static_cast<std::uint32_t>(tokens)).raw(repeated(std::string("\xa1x", 2), tokens));
    return {"string token ids", envelope(1, ev.bytes())};
}

// sha256 digests as hashes (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0).
HostilePayload many_digests(std::size_t size) {
    const std::size_t hashes = (size - 64) / 34;
    MsgBuilder ev;
    ev.array(2).str("BlockRemoved").array(static_cast<std::uint32_t>(hashes));
    const std::string digest(32, '\xab');
    for (std::size_t i = 0; i < hashes; ++i) ev.bin(digest);
    return {"32-byte digests", envelope(1, ev.bytes()), true};
}

}  // namespace

std::vector<HostilePayload> hostile_payloads(std::size_t size) {
    return {deep_nesting(size),       huge_event_count(size),   huge_hash_count(size),
            flat_unknown_array(size), many_unknown_keys(size),  wide_extra_keys(size),
            deep_extra_keys(size),    many_small_removed(size), many_small_removed_maps(size),
            many_empty_stored(size),  small_token_flood(size),  string_token_flood(size),
            many_digests(size)};
}

}  // namespace kvevents::test

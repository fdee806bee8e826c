#pragma once

// Shared helpers for the unit tests: building hashes, reading the example payloads, and comparing
// decoded batches field by field with readable failure output.

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/block_hash.h>
#include <kvevents/decode.h>
#include <kvevents/events.h>
#include <kvevents/hex.h>
#include <kvevents/testing/encoder.h>
#include <kvevents/value.h>

namespace kvevents {

// gtest printers, found by ADL, so failures show hashes and values instead of raw bytes.
inline void PrintTo(const BlockHash& h, std::ostream* os) {
    *os << (h.is_digest() ? "digest:" : (h.is_negative() ? "int:" : "uint:")) << h.to_string();
}

inline void PrintTo(const Value& v, std::ostream* os) {
    switch (v.kind) {
        case Value::Kind::kNil:
            *os << "nil";
            break;
        case Value::Kind::kBool:
            *os << (v.boolean ? "true" : "false");
            break;
        case Value::Kind::kInt:
            *os << v.int_value;
            break;
        case Value::Kind::kUint:
            *os << v.uint_value << "u";
            break;
        case Value::Kind::kFloat:
            *os << v.float_value;
            break;
        case Value::Kind::kString:
            *os << '"' << v.text << '"';
            break;
        case Value::Kind::kBytes:
            *os << "bin:" << kvevents::to_hex(v.text);
            break;
        case Value::Kind::kArray:
        case Value::Kind::kMap: {
            *os << (v.kind == Value::Kind::kArray ? "[" : "{");
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i > 0)
                    *os << ", ";
                PrintTo(v.items[i], os);
            }
            *os << (v.kind == Value::Kind::kArray ? "]" : "}");
            break;
        }
    }
}

inline void PrintTo(const NamedValue& nv, std::ostream* os) {
    *os << nv.name << "=";
    PrintTo(nv.value, os);
}

}  // namespace kvevents

namespace kvevents::test {

inline constexpr double kExampleTs = 1700000000.5;
inline constexpr std::uint64_t kH1 = 0x1122334455667788ULL;
inline constexpr std::uint64_t kH2 = 0xF0E1D2C3B4A59687ULL;

inline const char* era_name(testing::WireEra era) {
    switch (era) {
        case testing::WireEra::kV0_9:
            return "V0_9";
        case testing::WireEra::kDataParallel:
            return "DataParallel";
        case testing::WireEra::kMedium:
            return "Medium";
        case testing::WireEra::kLoraName:
            return "LoraName";
        case testing::WireEra::kExtraKeys:
            return "ExtraKeys";
        case testing::WireEra::kGroupIdx:
            return "GroupIdx";
        case testing::WireEra::kKvCacheSpec:
            return "KvCacheSpec";
        case testing::WireEra::kSglang:
            return "Sglang";
        case testing::WireEra::kMapEvents:
            return "MapEvents";
    }
    return "Unknown";
}

inline BlockHash digest_from(const std::vector<std::uint8_t>& bytes) {
    return BlockHash::from_digest(bytes.data(), bytes.size());
}

/// A digest of `count` bytes counting up from `first` (0x00, 0x01, ...).
inline BlockHash counting_digest(std::uint8_t first, std::size_t count) {
    std::vector<std::uint8_t> bytes(count);
    for (std::size_t i = 0; i < count; ++i) {
        bytes[i] = static_cast<std::uint8_t>(first + i);
    }
    return digest_from(bytes);
}

inline DecodeResult decode(const std::string& bytes) {
    return decode_batch(bytes.data(), bytes.size());
}

inline DecodeResult decode_hex(const std::string& hex) {
    return decode(kvevents::from_hex(hex));
}

/// The examples in tests/data/wire_examples.txt, by name ("E1" ... "E10"), as raw bytes.
inline const std::map<std::string, std::string>& wire_examples() {
    static const std::map<std::string, std::string> examples = [] {
        std::map<std::string, std::string> out;
        const std::string path = std::string(KVEVENTS_TEST_DATA_DIR) + "/wire_examples.txt";
        std::ifstream in(path);
        if (!in) {
            throw std::runtime_error("cannot open " + path);
        }
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#')
                continue;
            std::istringstream fields(line);
            std::string name;
            std::string hex;
            fields >> name >> hex;
            out[name] = kvevents::from_hex(hex);
        }
        return out;
    }();
    return examples;
}

inline std::string wire_example(const std::string& name) {
    const auto& examples = wire_examples();
    const auto it = examples.find(name);
    if (it == examples.end()) {
        throw std::runtime_error("no example " + name + " in wire_examples.txt");
    }
    return it->second;
}

inline void expect_stored_eq(const BlockStored& actual, const BlockStored& expected) {
    EXPECT_EQ(actual.block_hashes, expected.block_hashes);
    for (std::size_t i = 0; i < actual.block_hashes.size() && i < expected.block_hashes.size();
         ++i) {
        EXPECT_EQ(actual.block_hashes[i].is_negative(), expected.block_hashes[i].is_negative())
            << "block_hashes[" << i << "]";
    }
    EXPECT_EQ(actual.parent_block_hash, expected.parent_block_hash);
    if (actual.parent_block_hash && expected.parent_block_hash) {
        EXPECT_EQ(actual.parent_block_hash->is_negative(),
                  expected.parent_block_hash->is_negative());
    }
    EXPECT_EQ(actual.token_id_form, expected.token_id_form);
    EXPECT_EQ(actual.token_ids, expected.token_ids);
    EXPECT_EQ(actual.block_size, expected.block_size);
    EXPECT_EQ(actual.lora_id, expected.lora_id);
    EXPECT_EQ(actual.medium, expected.medium);
    EXPECT_EQ(actual.medium_name(), expected.medium_name());
    EXPECT_EQ(actual.group_idx, expected.group_idx);
    EXPECT_EQ(actual.kv_cache_spec_kind, expected.kv_cache_spec_kind);
    EXPECT_EQ(actual.kv_cache_spec_kind_name(), expected.kv_cache_spec_kind_name());
    const BlockStoredExtras& a = actual.extras.or_empty();
    const BlockStoredExtras& e = expected.extras.or_empty();
    EXPECT_EQ(a.token_id_pair_seconds, e.token_id_pair_seconds);
    EXPECT_EQ(a.token_id_strings, e.token_id_strings);
    EXPECT_EQ(a.lora_name, e.lora_name);
    EXPECT_EQ(a.extra_keys, e.extra_keys);
    EXPECT_EQ(a.kv_cache_spec_sliding_window, e.kv_cache_spec_sliding_window);
    EXPECT_EQ(a.locality, e.locality);
    EXPECT_EQ(a.ownership, e.ownership);
    EXPECT_EQ(a.session_id, e.session_id);
    EXPECT_EQ(a.cache_salt, e.cache_salt);
    EXPECT_EQ(a.other_fields, e.other_fields);
    EXPECT_TRUE(actual == expected);
}

inline void expect_removed_eq(const BlockRemoved& actual, const BlockRemoved& expected) {
    EXPECT_EQ(actual.block_hashes, expected.block_hashes);
    for (std::size_t i = 0; i < actual.block_hashes.size() && i < expected.block_hashes.size();
         ++i) {
        EXPECT_EQ(actual.block_hashes[i].is_negative(), expected.block_hashes[i].is_negative())
            << "block_hashes[" << i << "]";
    }
    EXPECT_EQ(actual.medium, expected.medium);
    EXPECT_EQ(actual.medium_name(), expected.medium_name());
    EXPECT_EQ(actual.group_idx, expected.group_idx);
    const BlockRemovedExtras& a = actual.extras.or_empty();
    const BlockRemovedExtras& e = expected.extras.or_empty();
    EXPECT_EQ(a.locality, e.locality);
    EXPECT_EQ(a.ownership, e.ownership);
    EXPECT_EQ(a.other_fields, e.other_fields);
    EXPECT_TRUE(actual == expected);
}

inline void expect_event_eq(const Event& actual, const Event& expected) {
    ASSERT_EQ(actual.index(), expected.index())
        << "got " << event_type_name(actual) << ", expected " << event_type_name(expected);
    if (const auto* stored = std::get_if<BlockStored>(&expected)) {
        expect_stored_eq(std::get<BlockStored>(actual), *stored);
    } else if (const auto* removed = std::get_if<BlockRemoved>(&expected)) {
        expect_removed_eq(std::get<BlockRemoved>(actual), *removed);
    }
}

inline void expect_batch_eq(const EventBatch& actual, const EventBatch& expected) {
    EXPECT_EQ(actual.ts, expected.ts);
    EXPECT_EQ(actual.data_parallel_rank, expected.data_parallel_rank);
    ASSERT_EQ(actual.events.size(), expected.events.size());
    for (std::size_t i = 0; i < expected.events.size(); ++i) {
        SCOPED_TRACE("event " + std::to_string(i));
        expect_event_eq(actual.events[i], expected.events[i]);
    }
}

}  // namespace kvevents::test

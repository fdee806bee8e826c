// Round trips batches built in C++ through the test encoder for every wire era, and decodes
// hand-made msgpack for the shapes no conforming publisher writes but the decoder must accept.

#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/decode.h>
#include <kvevents/events.h>
#include <kvevents/hex.h>
#include <kvevents/testing/encoder.h>

#include "msgpack_builder.h"
#include "test_helpers.h"

namespace kvevents {
namespace {

using test::batch_of;
using test::counting_digest;
using test::good_removed_map;
using test::good_stored;
using test::kH2;
using test::MsgBuilder;
using testing::EncodeOptions;
using testing::WireEra;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();

// ---------------------------------------------------------------------------------------------
// Values

Value bytes_value(std::string b) {
    Value v;
    v.kind = Value::Kind::kBytes;
    v.text = std::move(b);
    return v;
}

Value bool_value(bool b) {
    Value v;
    v.kind = Value::Kind::kBool;
    v.boolean = b;
    return v;
}

Value float_value(double d) {
    Value v;
    v.kind = Value::Kind::kFloat;
    v.float_value = d;
    return v;
}

Value array_value(std::vector<Value> items) {
    Value v;
    v.kind = Value::Kind::kArray;
    v.items = std::move(items);
    return v;
}

// key, value, key, value, ...
Value map_value(std::vector<Value> items) {
    Value v;
    v.kind = Value::Kind::kMap;
    v.items = std::move(items);
    return v;
}

// ---------------------------------------------------------------------------------------------
// Batches built in C++, one per hash kind

enum class HashKind { kSmallUint, kUintAbove2Pow63, kNegativeInt64, kDigest16, kDigest32 };

const char* hash_kind_name(HashKind kind) {
    switch (kind) {
        case HashKind::kSmallUint:
            return "SmallUint";
        case HashKind::kUintAbove2Pow63:
            return "UintAbove2Pow63";
        case HashKind::kNegativeInt64:
            return "NegativeInt64";
        case HashKind::kDigest16:
            return "Digest16";
        case HashKind::kDigest32:
            return "Digest32";
    }
    return "Unknown";
}

// A distinct hash of the given kind per seed.
BlockHash hash_of(HashKind kind, std::uint8_t seed) {
    switch (kind) {
        case HashKind::kSmallUint:
            return BlockHash::from_unsigned(seed);
        case HashKind::kUintAbove2Pow63:
            return BlockHash::from_unsigned(kH2 + seed);
        case HashKind::kNegativeInt64:
            return BlockHash::from_signed(static_cast<std::int64_t>(kH2) - seed);
        case HashKind::kDigest16:
            return counting_digest(static_cast<std::uint8_t>(seed * 16), 16);
        case HashKind::kDigest32:
            return counting_digest(static_cast<std::uint8_t>(seed * 32), 32);
    }
    return {};
}

BlockStored full_stored(HashKind kind) {
    BlockStored ev;
    ev.block_hashes = {hash_of(kind, 1), hash_of(kind, 2), hash_of(kind, 3)};
    ev.parent_block_hash = hash_of(kind, 0);
    ev.token_ids = {0,         1,     127,   128,          255,
                    256,       65535, 65536, 4294967295LL, 4294967296LL,
                    kInt64Max, -1,    -33,   kInt64Min};
    ev.block_size = 16;
    ev.lora_id = 7;
    ev.set_medium("CPU");
    ev.extras.ensure().lora_name = "adapter-a";
    ev.extras.ensure().extra_keys = std::vector<ExtraKeyEntry>{
        std::nullopt,
        std::vector<Value>{Value::string("mm-hash"), Value::unsigned_integer(5)},
        std::vector<Value>{Value::signed_integer(-3), bytes_value(std::string("\x00\xff", 2)),
                           bool_value(true), float_value(1.5),
                           array_value({Value::unsigned_integer(1), Value{}})},
        std::vector<Value>{},
    };
    ev.group_idx = 2;
    ev.set_kv_cache_spec_kind("sliding_window");
    ev.extras.ensure().kv_cache_spec_sliding_window = 4096;
    ev.extras.ensure().locality = "REMOTE";
    ev.extras.ensure().ownership = Value::unsigned_integer(3);
    ev.extras.ensure().session_id = Value::string("session-9");
    ev.extras.ensure().cache_salt = "salt-1";
    ev.extras.ensure().other_fields = {
        {"mm_keys",
         array_value({map_value({Value::string("type"), Value::string("mm_key"),
                                 Value::string("start_offset"), Value::unsigned_integer(0)})})},
        {"event_version", Value::unsigned_integer(1)},
    };
    return ev;
}

// Only block_hashes set: every optional nil/absent, no tokens.
BlockStored sparse_stored(HashKind kind) {
    BlockStored ev;
    ev.block_hashes = {hash_of(kind, 4)};
    return ev;
}

BlockStored bigram_stored(HashKind kind) {
    BlockStored ev;
    ev.block_hashes = {hash_of(kind, 5)};
    ev.parent_block_hash = hash_of(kind, 4);
    ev.token_id_form = TokenIdForm::kBigram;
    ev.token_ids = {10, 11, 300};
    ev.extras.ensure().token_id_pair_seconds = {11, 300, 70000};
    ev.block_size = 3;
    ev.set_medium("GPU");
    return ev;
}

BlockStored string_token_stored(HashKind kind) {
    BlockStored ev;
    ev.block_hashes = {hash_of(kind, 6)};
    ev.token_id_form = TokenIdForm::kString;
    ev.extras.ensure().token_id_strings = {"17", "tok", "-4"};
    ev.block_size = 3;
    return ev;
}

BlockRemoved full_removed(HashKind kind) {
    BlockRemoved ev;
    ev.block_hashes = {hash_of(kind, 1), hash_of(kind, 2)};
    ev.set_medium("CPU");
    ev.group_idx = 2;
    ev.extras.ensure().locality = "LOCAL";
    ev.extras.ensure().ownership = Value::string("tier-2");
    ev.extras.ensure().other_fields = {{"reason", Value::string("evicted")}};
    return ev;
}

BlockRemoved sparse_removed(HashKind kind) {
    BlockRemoved ev;
    ev.block_hashes = {hash_of(kind, 3)};
    return ev;
}

constexpr std::size_t kEventsPerBatch = 7;

EventBatch make_batch(HashKind kind) {
    EventBatch batch;
    batch.ts = 1700000123.25;
    batch.data_parallel_rank = 5;
    batch.events = {full_stored(kind),         sparse_stored(kind), bigram_stored(kind),
                    string_token_stored(kind), full_removed(kind),  sparse_removed(kind),
                    AllBlocksCleared{}};
    return batch;
}

// What each era can carry; everything else comes back nullopt/empty.
struct EraFields {
    bool rank = false;
    bool medium = false;
    bool lora_name = false;
    bool extra_keys = false;
    bool group_idx = false;
    bool spec = false;
    bool cache_salt = false;
    bool map_only = false;  // locality, ownership, session_id, other_fields
};

EraFields fields_of(WireEra era) {
    EraFields f;
    switch (era) {
        case WireEra::kMapEvents:
            f.map_only = true;
            f.cache_salt = true;
            [[fallthrough]];
        case WireEra::kKvCacheSpec:
            f.spec = true;
            [[fallthrough]];
        case WireEra::kGroupIdx:
            f.group_idx = true;
            [[fallthrough]];
        case WireEra::kExtraKeys:
            f.extra_keys = true;
            [[fallthrough]];
        case WireEra::kLoraName:
            f.lora_name = true;
            [[fallthrough]];
        case WireEra::kMedium:
            f.medium = true;
            [[fallthrough]];
        case WireEra::kDataParallel:
            f.rank = true;
            [[fallthrough]];
        case WireEra::kV0_9:
            break;
        case WireEra::kSglang:
            f.rank = true;
            f.medium = true;
            f.cache_salt = true;
            break;
    }
    return f;
}

EventBatch expected_after(EventBatch batch, WireEra era) {
    const EraFields f = fields_of(era);
    if (!f.rank)
        batch.data_parallel_rank.reset();
    for (Event& event : batch.events) {
        std::visit(Overloaded{
                       [&](BlockStored& ev) {
                           if (!f.medium)
                               ev.set_medium(std::nullopt);
                           if (!f.lora_name)
                               ev.extras.ensure().lora_name.reset();
                           if (!f.extra_keys)
                               ev.extras.ensure().extra_keys.reset();
                           if (!f.group_idx)
                               ev.group_idx.reset();
                           if (!f.spec) {
                               ev.set_kv_cache_spec_kind(std::nullopt);
                               ev.extras.ensure().kv_cache_spec_sliding_window.reset();
                           }
                           if (!f.cache_salt)
                               ev.extras.ensure().cache_salt.reset();
                           if (!f.map_only) {
                               ev.extras.ensure().locality.reset();
                               ev.extras.ensure().ownership.reset();
                               ev.extras.ensure().session_id.reset();
                               ev.extras.ensure().other_fields.clear();
                           }
                       },
                       [&](BlockRemoved& ev) {
                           if (!f.medium)
                               ev.set_medium(std::nullopt);
                           if (!f.group_idx)
                               ev.group_idx.reset();
                           if (!f.map_only) {
                               ev.extras.ensure().locality.reset();
                               ev.extras.ensure().ownership.reset();
                               ev.extras.ensure().other_fields.clear();
                           }
                       },
                       [](AllBlocksCleared&) {},
                   },
                   event);
    }
    return batch;
}

constexpr WireEra kAllEras[] = {
    WireEra::kV0_9,        WireEra::kDataParallel, WireEra::kMedium,
    WireEra::kLoraName,    WireEra::kExtraKeys,    WireEra::kGroupIdx,
    WireEra::kKvCacheSpec, WireEra::kSglang,       WireEra::kMapEvents,
};

constexpr HashKind kAllHashKinds[] = {HashKind::kSmallUint, HashKind::kUintAbove2Pow63,
                                      HashKind::kNegativeInt64, HashKind::kDigest16,
                                      HashKind::kDigest32};

using RoundtripParam = std::tuple<WireEra, HashKind, bool>;

class RoundtripTest : public ::testing::TestWithParam<RoundtripParam> {
protected:
    WireEra era() const { return std::get<0>(GetParam()); }
    HashKind hash_kind() const { return std::get<1>(GetParam()); }
    bool map_envelope() const { return std::get<2>(GetParam()); }
    EncodeOptions options() const { return {era(), map_envelope()}; }
};

// No fatal error and no event errors; unknown tags are checked where a test sends them.
void expect_clean(const DecodeResult& r, std::size_t unknown_events = 0) {
    ASSERT_FALSE(r.fatal) << r.fatal->message();
    for (const DecodeError& e : r.event_errors) {
        ADD_FAILURE() << e.message();
    }
    EXPECT_EQ(r.unknown_events, unknown_events);
}

TEST_P(RoundtripTest, DecodesEverythingTheEraCarries) {
    const EventBatch original = make_batch(hash_kind());
    const std::string bytes = testing::encode_batch(original, options());
    const DecodeResult r = test::decode(bytes);
    expect_clean(r);
    test::expect_batch_eq(r.batch, expected_after(original, era()));

    EXPECT_EQ(r.shape.map_envelope, map_envelope());
    EXPECT_EQ(r.shape.envelope_size, era() == WireEra::kV0_9 ? 2u : 3u);
    const bool map_events = era() == WireEra::kMapEvents;
    EXPECT_EQ(r.shape.positional_events, map_events ? 0u : kEventsPerBatch);
    EXPECT_EQ(r.shape.map_events, map_events ? kEventsPerBatch : 0u);
}

TEST_P(RoundtripTest, ReencodingTheDecodedBatchGivesTheSameBytes) {
    const std::string first = testing::encode_batch(make_batch(hash_kind()), options());
    const DecodeResult r = test::decode(first);
    expect_clean(r);
    EXPECT_EQ(kvevents::to_hex(testing::encode_batch(r.batch, options())), kvevents::to_hex(first));
}

TEST_P(RoundtripTest, HashesKeepKindAndSign) {
    const std::string bytes = testing::encode_batch(make_batch(hash_kind()), options());
    const DecodeResult r = test::decode(bytes);
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), kEventsPerBatch);
    const auto& stored = std::get<BlockStored>(r.batch.events[0]);
    ASSERT_EQ(stored.block_hashes.size(), 3u);
    for (const BlockHash& h : stored.block_hashes) {
        switch (hash_kind()) {
            case HashKind::kSmallUint:
            case HashKind::kUintAbove2Pow63:
                EXPECT_TRUE(h.is_integer());
                EXPECT_FALSE(h.is_negative());
                break;
            case HashKind::kNegativeInt64:
                EXPECT_TRUE(h.is_integer());
                EXPECT_TRUE(h.is_negative());
                EXPECT_EQ(h.to_string().front(), '-');
                break;
            case HashKind::kDigest16:
                EXPECT_EQ(h.digest_size(), 16u);
                break;
            case HashKind::kDigest32:
                EXPECT_EQ(h.digest_size(), 32u);
                break;
        }
    }
    EXPECT_EQ(stored.block_hashes[1].to_u64(), hash_of(hash_kind(), 2).to_u64());
}

INSTANTIATE_TEST_SUITE_P(AllErasAndHashKinds,
                         RoundtripTest,
                         ::testing::Combine(::testing::ValuesIn(kAllEras),
                                            ::testing::ValuesIn(kAllHashKinds),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<RoundtripParam>& param_info) {
                             return std::string(test::era_name(std::get<0>(param_info.param))) +
                                    "_" + hash_kind_name(std::get<1>(param_info.param)) + "_" +
                                    (std::get<2>(param_info.param) ? "MapEnvelope"
                                                                   : "ArrayEnvelope");
                         });

TEST(EraRoundtripTest, SglangUnsaltedStoreHasSevenElements) {
    EventBatch batch;
    batch.ts = 2.5;
    batch.data_parallel_rank = 0;
    BlockStored ev = sparse_stored(HashKind::kNegativeInt64);
    ev.set_medium("GPU");
    batch.events = {ev};
    const std::string bytes = testing::encode_batch(batch, {WireEra::kSglang, false});
    // envelope(1) + ts(9) + events(1), then the event header: array(7).
    ASSERT_GT(bytes.size(), 11u);
    EXPECT_EQ(static_cast<unsigned char>(bytes[11]), 0x97);
    const DecodeResult r = test::decode(bytes);
    expect_clean(r);
    test::expect_batch_eq(r.batch, batch);
}

TEST(EraRoundtripTest, EmptyBatchInEveryEra) {
    EventBatch batch;
    batch.ts = 0.25;
    for (const WireEra era : kAllEras) {
        for (const bool map_envelope : {false, true}) {
            SCOPED_TRACE(std::string(test::era_name(era)) + (map_envelope ? " map" : " array"));
            const DecodeResult r = test::decode(testing::encode_batch(batch, {era, map_envelope}));
            expect_clean(r);
            EXPECT_EQ(r.batch.ts, 0.25);
            EXPECT_FALSE(r.batch.data_parallel_rank.has_value());
            EXPECT_TRUE(r.batch.events.empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made msgpack

TEST(HandMadeDecodeTest, UnknownTagsAreSkippedAndCountedWhileSiblingsDecode) {
    MsgBuilder inactive_positional;
    inactive_positional.array(3).str("BlockInactive").array(1).uint(7).str("GPU");
    MsgBuilder inactive_map;
    inactive_map.map(2).str("type").str("BlockInactive").str("block_hashes").array(1).uint(8);
    MsgBuilder future_map_type_not_first;
    future_map_type_not_first.map(3).str("block_hashes").array(1).uint(9);
    future_map_type_not_first.str("type").str("FutureEvent");
    future_map_type_not_first.str("nested").map(1).str("a").array(2).uint(1).array(0);
    MsgBuilder cleared;
    cleared.array(1).str("AllBlocksCleared");

    const DecodeResult r = test::decode(batch_of({
        good_stored(1),
        inactive_positional.bytes(),
        inactive_map.bytes(),
        good_removed_map(2),
        future_map_type_not_first.bytes(),
        cleared.bytes(),
    }));
    expect_clean(r, 3);
    ASSERT_EQ(r.batch.events.size(), 3u);
    ASSERT_TRUE(std::holds_alternative<BlockStored>(r.batch.events[0]));
    EXPECT_EQ(std::get<BlockStored>(r.batch.events[0]).block_hashes,
              std::vector<BlockHash>{BlockHash::from_unsigned(1)});
    ASSERT_TRUE(std::holds_alternative<BlockRemoved>(r.batch.events[1]));
    EXPECT_EQ(std::get<BlockRemoved>(r.batch.events[1]).block_hashes,
              std::vector<BlockHash>{BlockHash::from_unsigned(2)});
    EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(r.batch.events[2]));
    EXPECT_EQ(r.unknown_tags, (std::vector<std::string>{"BlockInactive", "FutureEvent"}));
    EXPECT_EQ(r.shape.positional_events, 3u);
    EXPECT_EQ(r.shape.map_events, 3u);
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
}

TEST(HandMadeDecodeTest, UnknownTagsKeepAtMostEightDistinct) {
    std::vector<std::string> events;
    for (int i = 0; i < 10; ++i) {
        MsgBuilder b;
        b.array(1).str("Future" + std::to_string(i));
        events.push_back(b.bytes());
    }
    MsgBuilder repeat;
    repeat.map(1).str("type").str("Future0");
    events.push_back(repeat.bytes());
    events.push_back(good_stored(3));

    const DecodeResult r = test::decode(batch_of(events));
    expect_clean(r, 11);
    EXPECT_EQ(r.unknown_tags,
              (std::vector<std::string>{"Future0", "Future1", "Future2", "Future3", "Future4",
                                        "Future5", "Future6", "Future7"}));
    ASSERT_EQ(r.batch.events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<BlockStored>(r.batch.events[0]));
}

TEST(HandMadeDecodeTest, MapEventKeysInAnyOrderWithUnknownKeysKept) {
    MsgBuilder b;
    b.map(11);
    b.str("medium").str("CPU");
    b.str("token_ids").array(2).uint(1).uint(2);
    b.str("zz_future").array(2).uint(1).str("a");
    b.str("lora_name").nil();
    b.str("block_size").uint(2);
    b.str("type").str("BlockStored");
    b.str("parent_block_hash").uint(5);
    b.str("a_negative").sint(-7);
    b.str("lora_id").nil();
    b.str("block_hashes").array(1).uint(6);
    b.str("group_idx").uint(1);

    const DecodeResult r = test::decode(batch_of({b.bytes(), good_stored(9)}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 2u);
    BlockStored expected;
    expected.block_hashes = {BlockHash::from_unsigned(6)};
    expected.parent_block_hash = BlockHash::from_unsigned(5);
    expected.token_ids = {1, 2};
    expected.block_size = 2;
    expected.set_medium("CPU");
    expected.group_idx = 1;
    expected.extras.ensure().other_fields = {
        {"zz_future", array_value({Value::unsigned_integer(1), Value::string("a")})},
        {"a_negative", Value::signed_integer(-7)},
    };
    test::expect_event_eq(r.batch.events[0], expected);
    EXPECT_EQ(r.shape.map_events, 1u);
    EXPECT_EQ(r.shape.positional_events, 1u);
}

TEST(HandMadeDecodeTest, UnknownKeysOfEveryKindKeptInWireOrder) {
    MsgBuilder b;
    b.map(9).str("type").str("BlockRemoved").str("block_hashes").array(1).uint(1);
    b.str("k_str").str("x");
    b.str("k_bin").bin(std::string("\xab\x00", 2));
    b.str("k_map").map(1).str("inner").boolean(true);
    b.str("k_float").f64(2.5);
    b.str("k_bool").boolean(false);
    b.str("k_nil").nil();  // a nil unknown key reads like an absent one (omit_defaults)
    b.str("k_uint_max").uint(std::numeric_limits<std::uint64_t>::max());

    const DecodeResult r = test::decode(batch_of({b.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto& ev = std::get<BlockRemoved>(r.batch.events[0]);
    const std::vector<NamedValue> expected = {
        {"k_str", Value::string("x")},
        {"k_bin", bytes_value(std::string("\xab\x00", 2))},
        {"k_map", map_value({Value::string("inner"), bool_value(true)})},
        {"k_float", float_value(2.5)},
        {"k_bool", bool_value(false)},
        {"k_uint_max", Value::unsigned_integer(std::numeric_limits<std::uint64_t>::max())},
    };
    EXPECT_EQ(ev.extras.or_empty().other_fields, expected);
    EXPECT_EQ(ev.medium, Medium::kUnset);
}

TEST(HandMadeDecodeTest, Map16HeadersForSmallMapsAndWideContainerHeaders) {
    // map16 (de) for a 3-entry event, as msgspec writes once a struct could hold 16+ keys;
    // array16 (dc) for a small event array; str8 (d9) for a tag; map16 for the envelope.
    MsgBuilder map16_event;
    map16_event.hex("de0003").str("type").str("BlockRemoved");
    map16_event.str("block_hashes").hex("dc0001").uint(3).str("medium").str("CPU");
    MsgBuilder array16_event;
    array16_event.hex("dc0002").hex("d90b").raw("BlockStored").array(1).uint(4);
    MsgBuilder map32_event;
    map32_event.hex("df00000001").str("type").hex("da0010").raw("AllBlocksCleared");

    MsgBuilder b;
    b.hex("de0003").str("events").array(3);
    b.raw(map16_event.bytes()).raw(array16_event.bytes()).raw(map32_event.bytes());
    b.str("ts").f64(3.5).str("data_parallel_rank").uint(2);

    const DecodeResult r = test::decode(b.bytes());
    expect_clean(r);
    EXPECT_TRUE(r.shape.map_envelope);
    EXPECT_EQ(r.shape.envelope_size, 3u);
    EXPECT_EQ(r.batch.ts, 3.5);
    EXPECT_EQ(r.batch.data_parallel_rank, 2);
    ASSERT_EQ(r.batch.events.size(), 3u);
    const auto& removed = std::get<BlockRemoved>(r.batch.events[0]);
    EXPECT_EQ(removed.block_hashes, std::vector<BlockHash>{BlockHash::from_unsigned(3)});
    EXPECT_EQ(removed.medium_name(), "CPU");
    const auto& stored = std::get<BlockStored>(r.batch.events[1]);
    EXPECT_EQ(stored.block_hashes, std::vector<BlockHash>{BlockHash::from_unsigned(4)});
    EXPECT_TRUE(stored.token_ids.empty());
    EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(r.batch.events[2]));
}

TEST(HandMadeDecodeTest, ExtraTrailingEnvelopeElementsIgnored) {
    MsgBuilder b;
    b.array(6).f64(test::kBatchTs).array(1).raw(good_stored(1)).uint(2);
    b.bin(std::string(16, '\x5a'));                 // a future publisher_id
    b.map(1).str("future").array(2).uint(1).nil();  // anything else
    b.nil();

    const DecodeResult r = test::decode(b.bytes());
    expect_clean(r);
    EXPECT_EQ(r.shape.envelope_size, 6u);
    EXPECT_EQ(r.batch.data_parallel_rank, 2);
    ASSERT_EQ(r.batch.events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<BlockStored>(r.batch.events[0]));
}

TEST(HandMadeDecodeTest, MapEnvelopeInAnyOrderWithUnknownKeys) {
    MsgBuilder b;
    b.map(4).str("data_parallel_rank").sint(-1).str("publisher_id").bin(std::string(16, '\x01'));
    b.str("events").array(1).raw(good_removed_map(5)).str("ts").f64(9.75);

    const DecodeResult r = test::decode(b.bytes());
    expect_clean(r);
    EXPECT_TRUE(r.shape.map_envelope);
    EXPECT_EQ(r.shape.envelope_size, 4u);
    EXPECT_EQ(r.batch.ts, 9.75);
    EXPECT_EQ(r.batch.data_parallel_rank, -1);
    ASSERT_EQ(r.batch.events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<BlockRemoved>(r.batch.events[0]));
}

TEST(HandMadeDecodeTest, ExtraTrailingPositionalEventElementsIgnored) {
    MsgBuilder stored;
    stored.array(14).str("BlockStored").array(1).uint(1).uint(2).array(1).uint(3).uint(1);
    stored.uint(9).str("GPU").str("lora").array(0).uint(1).str("full_attention").nil();
    stored.str("future-13").map(1).str("x").array(1).uint(1);
    MsgBuilder removed;
    removed.array(6).str("BlockRemoved").array(1).uint(4).str("CPU").uint(2).str("x").nil();
    MsgBuilder cleared;
    cleared.array(3).str("AllBlocksCleared").uint(1).map(0);

    const DecodeResult r =
        test::decode(batch_of({stored.bytes(), removed.bytes(), cleared.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 3u);
    BlockStored expected_stored;
    expected_stored.block_hashes = {BlockHash::from_unsigned(1)};
    expected_stored.parent_block_hash = BlockHash::from_unsigned(2);
    expected_stored.token_ids = {3};
    expected_stored.block_size = 1;
    expected_stored.lora_id = 9;
    expected_stored.set_medium("GPU");
    expected_stored.extras.ensure().lora_name = "lora";
    expected_stored.extras.ensure().extra_keys = std::vector<ExtraKeyEntry>{};
    expected_stored.group_idx = 1;
    expected_stored.set_kv_cache_spec_kind("full_attention");
    test::expect_event_eq(r.batch.events[0], expected_stored);
    BlockRemoved expected_removed;
    expected_removed.block_hashes = {BlockHash::from_unsigned(4)};
    expected_removed.set_medium("CPU");
    expected_removed.group_idx = 2;
    test::expect_event_eq(r.batch.events[1], expected_removed);
    EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(r.batch.events[2]));
}

TEST(HandMadeDecodeTest, ShortPositionalEventsTreatMissingFieldsAsNil) {
    MsgBuilder only_hashes;
    only_hashes.array(2).str("BlockStored").array(1).uint(1);
    MsgBuilder five;
    five.array(5).str("BlockStored").array(1).uint(2).nil().array(1).uint(3).uint(4);

    const DecodeResult r = test::decode(batch_of({only_hashes.bytes(), five.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 2u);
    BlockStored expected;
    expected.block_hashes = {BlockHash::from_unsigned(1)};
    test::expect_event_eq(r.batch.events[0], expected);
    expected.block_hashes = {BlockHash::from_unsigned(2)};
    expected.token_ids = {3};
    expected.block_size = 4;
    test::expect_event_eq(r.batch.events[1], expected);
}

TEST(HandMadeDecodeTest, HashesInEveryIntegerWidth) {
    struct Case {
        const char* hex;
        std::uint64_t bits;
        bool negative;
        const char* text;
    };
    const Case cases[] = {
        {"05", 5, false, "5"},
        {"ccff", 255, false, "255"},
        {"cd1234", 0x1234, false, "4660"},
        {"ce12345678", 0x12345678, false, "305419896"},
        {"cff0e1d2c3b4a59687", kH2, false, "17357386176853808775"},
        {"d080", 0xffffffffffffff80ULL, true, "-128"},
        {"d18000", 0xffffffffffff8000ULL, true, "-32768"},
        {"d280000000", 0xffffffff80000000ULL, true, "-2147483648"},
        {"d3f0e1d2c3b4a59687", kH2, true, "-1089357896855742841"},
        {"e0", 0xffffffffffffffe0ULL, true, "-32"},
        {"ff", 0xffffffffffffffffULL, true, "-1"},
        {"d005", 5, false, "5"},  // a non-negative value in a signed form
        {"d30000000000000001", 1, false, "1"},
    };
    MsgBuilder b;
    b.array(2).str("BlockRemoved").array(static_cast<std::uint32_t>(std::size(cases)));
    for (const Case& c : cases) b.hex(c.hex);

    const DecodeResult r = test::decode(batch_of({b.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto& hashes = std::get<BlockRemoved>(r.batch.events[0]).block_hashes;
    ASSERT_EQ(hashes.size(), std::size(cases));
    for (std::size_t i = 0; i < hashes.size(); ++i) {
        SCOPED_TRACE(cases[i].hex);
        EXPECT_TRUE(hashes[i].is_integer());
        EXPECT_EQ(hashes[i].to_u64(), cases[i].bits);
        EXPECT_EQ(hashes[i].is_negative(), cases[i].negative);
        EXPECT_EQ(hashes[i].to_string(), cases[i].text);
    }
}

TEST(HandMadeDecodeTest, IntsInEveryIntegerWidth) {
    const char* token_hex[] = {
        "05",
        "ccff",
        "cdffff",
        "ceffffffff",
        "cf0000000100000000",
        "cf7fffffffffffffff",
        "d080",
        "d18000",
        "d280000000",
        "d38000000000000000",
        "e0",
        "ff",
        "d07f",
    };
    const std::vector<std::int64_t> expected_tokens = {
        5,      255,           65535,     4294967295LL, 4294967296LL, kInt64Max, -128,
        -32768, -2147483648LL, kInt64Min, -32,          -1,           127,
    };
    MsgBuilder ev;
    ev.array(12).str("BlockStored").array(1).uint(1).nil();
    ev.array(static_cast<std::uint32_t>(std::size(token_hex)));
    for (const char* h : token_hex) ev.hex(h);
    ev.hex("cd0100");              // block_size 256
    ev.hex("d1ff00");              // lora_id -256
    ev.nil().nil().nil();          // medium, lora_name, extra_keys
    ev.hex("cd7fff");              // group_idx 32767, the most an int16 holds
    ev.nil();                      // kv_cache_spec_kind
    ev.hex("cf0000000000001000");  // sliding window 4096

    MsgBuilder b;
    b.array(3).f64(1.0).array(1).raw(ev.bytes()).hex("cd0102");  // rank 258

    const DecodeResult r = test::decode(b.bytes());
    expect_clean(r);
    EXPECT_EQ(r.batch.data_parallel_rank, 258);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto& stored = std::get<BlockStored>(r.batch.events[0]);
    EXPECT_EQ(stored.token_id_form, TokenIdForm::kPlain);
    EXPECT_EQ(stored.token_ids, expected_tokens);
    EXPECT_EQ(stored.block_size, 256);
    EXPECT_EQ(stored.lora_id, -256);
    EXPECT_EQ(stored.group_idx, 32767);
    EXPECT_EQ(stored.extras.or_empty().kv_cache_spec_sliding_window, 4096);
}

TEST(HandMadeDecodeTest, NegativeFixintRank) {
    const DecodeResult r = test::decode_hex("93cb41d954fc4020000090ff");
    expect_clean(r);
    EXPECT_EQ(r.batch.data_parallel_rank, -1);
}

TEST(HandMadeDecodeTest, Float32AndIntegerTs) {
    const DecodeResult f32 = test::decode_hex("93ca3fc0000090c0");
    expect_clean(f32);
    EXPECT_EQ(f32.batch.ts, 1.5);
    const DecodeResult f32_negative = test::decode_hex("93cac010000090c0");
    expect_clean(f32_negative);
    EXPECT_EQ(f32_negative.batch.ts, -2.25);
    MsgBuilder b;
    b.array(2).f32(8388609.0f).array(0);
    const DecodeResult built = test::decode(b.bytes());
    expect_clean(built);
    EXPECT_EQ(built.batch.ts, 8388609.0);
    const DecodeResult integer = test::decode_hex("92ce6553f10090");
    expect_clean(integer);
    EXPECT_EQ(integer.batch.ts, 1700000000.0);
}

TEST(HandMadeDecodeTest, SglangMetadataMapKeepsUnknownEntries) {
    MsgBuilder ev;
    ev.array(8).str("BlockStored").array(1).sint(-5).nil().array(1).uint(1).uint(1).nil();
    ev.str("GPU").map(2).str("session_hint").str("abc").str("cache_salt").str("pepper");

    const DecodeResult r = test::decode(batch_of({ev.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto& stored = std::get<BlockStored>(r.batch.events[0]);
    EXPECT_EQ(stored.block_hashes, std::vector<BlockHash>{BlockHash::from_signed(-5)});
    EXPECT_TRUE(stored.block_hashes[0].is_negative());
    EXPECT_EQ(stored.extras.or_empty().cache_salt, "pepper");
    EXPECT_FALSE(stored.extras.or_empty().lora_name.has_value());
    EXPECT_EQ(stored.extras.or_empty().other_fields,
              (std::vector<NamedValue>{{"session_hint", Value::string("abc")}}));
}

TEST(HandMadeDecodeTest, MixedIntAndStringTokensBecomeStrings) {
    MsgBuilder ints_first;
    ints_first.map(3).str("type").str("BlockStored").str("block_hashes").array(1).uint(1);
    ints_first.str("token_ids").array(3).uint(1).str("x").sint(-3);
    MsgBuilder string_first;
    string_first.map(3).str("type").str("BlockStored").str("block_hashes").array(1).uint(2);
    string_first.str("token_ids").array(2).str("a").uint(70000);

    const DecodeResult r = test::decode(batch_of({ints_first.bytes(), string_first.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 2u);
    const auto& first = std::get<BlockStored>(r.batch.events[0]);
    EXPECT_EQ(first.token_id_form, TokenIdForm::kString);
    EXPECT_TRUE(first.token_ids.empty());
    EXPECT_EQ(first.token_ids.capacity(), 0u);  // the integers' buffer is not kept
    EXPECT_EQ(first.extras.or_empty().token_id_strings, (std::vector<std::string>{"1", "x", "-3"}));
    const auto& second = std::get<BlockStored>(r.batch.events[1]);
    EXPECT_EQ(second.token_id_form, TokenIdForm::kString);
    EXPECT_EQ(second.extras.or_empty().token_id_strings, (std::vector<std::string>{"a", "70000"}));
}

TEST(HandMadeDecodeTest, ARepeatedNameKeyKeepsOnlyTheLastValue) {
    const std::string long_name(40, 'd');
    MsgBuilder other_then_known;
    other_then_known.map(4).str("type").str("BlockRemoved").str("block_hashes").array(1).uint(1);
    other_then_known.str("medium").str("cuda:0").str("medium").str("GPU");
    MsgBuilder short_then_long;
    short_then_long.map(4).str("type").str("BlockRemoved").str("block_hashes").array(1).uint(1);
    short_then_long.str("medium").str(long_name.substr(0, 20)).str("medium").str(long_name);

    const DecodeResult r =
        test::decode(batch_of({other_then_known.bytes(), short_then_long.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 2u);
    BlockRemoved plain_gpu;
    plain_gpu.block_hashes.push_back(BlockHash::from_unsigned(1));
    plain_gpu.set_medium("GPU");
    EXPECT_TRUE(std::get<BlockRemoved>(r.batch.events[0]) == plain_gpu);
    EXPECT_EQ(std::get<BlockRemoved>(r.batch.events[1]).medium_name(), long_name);
}

TEST(HandMadeDecodeTest, ANilAfterAValueClearsEveryRareField) {
    const char* const stored_keys[] = {"lora_name", "extra_keys", "kv_cache_spec_sliding_window",
                                       "locality",  "ownership",  "session_id",
                                       "cache_salt"};
    MsgBuilder stored;
    stored.map(static_cast<std::uint32_t>(2 + 2 * std::size(stored_keys)));
    stored.str("type").str("BlockStored");
    stored.str("block_hashes").array(1).uint(1);
    for (const char* key : stored_keys) {
        stored.str(key);
        if (std::string_view(key) == "extra_keys") {
            stored.array(1).nil();
        } else if (std::string_view(key) == "kv_cache_spec_sliding_window") {
            stored.uint(4096);
        } else {
            stored.str("v");
        }
        stored.str(key).nil();
    }
    MsgBuilder removed;
    removed.map(6).str("type").str("BlockRemoved").str("block_hashes").array(1).uint(1);
    removed.str("locality").str("LOCAL").str("locality").nil();
    removed.str("ownership").uint(3).str("ownership").nil();

    const DecodeResult r = test::decode(batch_of({stored.bytes(), removed.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 2u);
    BlockStored plain_stored;
    plain_stored.block_hashes.push_back(BlockHash::from_unsigned(1));
    EXPECT_TRUE(std::get<BlockStored>(r.batch.events[0]) == plain_stored);
    BlockRemoved plain_removed;
    plain_removed.block_hashes.push_back(BlockHash::from_unsigned(1));
    EXPECT_TRUE(std::get<BlockRemoved>(r.batch.events[1]) == plain_removed);
}

TEST(HandMadeDecodeTest, NilTokenIdsReadAsEmpty) {
    MsgBuilder ev;
    ev.array(5).str("BlockStored").array(1).uint(1).nil().nil().uint(4);
    const DecodeResult r = test::decode(batch_of({ev.bytes()}));
    expect_clean(r);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto& stored = std::get<BlockStored>(r.batch.events[0]);
    EXPECT_EQ(stored.token_id_form, TokenIdForm::kPlain);
    EXPECT_TRUE(stored.token_ids.empty());
    EXPECT_EQ(stored.block_size, 4);
}

}  // namespace
}  // namespace kvevents

namespace kvevents {
namespace {

// Found by the fuzzer: an SGLang metadata map whose key is a modeled field's name ("block_size")
// is kept in other_fields; the map-era encoder must not write it as a second "block_size" key.
TEST(RoundTrip, MetadataKeyNamedLikeAFieldDoesNotCollideWhenReencoded) {
    const std::string payload = kvevents::from_hex(
        "93cb41d954fc40200000919"
        "8ab426c6f636b53746f72656491d3f0e1d2c3b4a59687e7929201039202030240a347505581aa626c6f636b"
        "5f73697a65a17400");
    const DecodeResult first = decode_batch(payload.data(), payload.size());
    ASSERT_TRUE(first.ok());
    const auto& stored = std::get<BlockStored>(first.batch.events.at(0));
    ASSERT_EQ(stored.extras.or_empty().other_fields.size(), 1U);
    EXPECT_EQ(stored.extras.or_empty().other_fields[0].name, "block_size");
    EXPECT_EQ(stored.block_size, 2);
    EXPECT_EQ(stored.lora_id, 64);
    const std::string again = testing::encode_batch(first.batch);
    const DecodeResult second = decode_batch(again.data(), again.size());
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(std::get<BlockStored>(second.batch.events.at(0)).block_size, 2);
}

}  // namespace
}  // namespace kvevents

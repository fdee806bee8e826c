// Malformed payloads: each must give a precise error, never a crash, hang or huge allocation.
// Envelope-level problems are fatal; a malformed event that can still be stepped over is reported
// on its own and its valid siblings are kept.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kvevents/decode.h>
#include <kvevents/events.h>
#include <kvevents/hex.h>
#include <kvevents/testing/encoder.h>

#include "msgpack_builder.h"
#include "test_helpers.h"

// The largest single allocation made on this thread since the last reset, so the tests can check
// that a declared length is never trusted for a reservation. ThreadSanitizer's runtime defines
// operator new itself, so under TSan the hook is left out and those tests skip.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KVEVENTS_NO_ALLOCATION_HOOK 1
#endif
#endif

namespace {
thread_local std::size_t t_largest_allocation = 0;
#ifdef KVEVENTS_NO_ALLOCATION_HOOK
constexpr bool kAllocationHook = false;
#else
constexpr bool kAllocationHook = true;
#endif
}  // namespace

#ifndef KVEVENTS_NO_ALLOCATION_HOOK
void* operator new(std::size_t size) {
    if (size > t_largest_allocation)
        t_largest_allocation = size;
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
#endif

namespace kvevents {
namespace {

using kvevents::from_hex;
using test::batch_of;
using test::good_removed_map;
using test::good_stored;
using test::MsgBuilder;
using ::testing::HasSubstr;

// The envelope `[1700000000.5, ` up to the events, as hex.
constexpr const char* kTs = "cb41d954fc40200000";

std::string envelope_hex(const std::string& rest) {
    return from_hex(std::string("93") + kTs + rest);
}

struct MalformedCase {
    std::string name;
    std::string bytes;
    bool fatal = false;
    DecodeErrc code = DecodeErrc::kTruncated;
    // Per-event errors: the index of the bad event. Fatal errors raised inside an event: the
    // event the message must name ("event N"); nullopt for envelope problems.
    std::optional<std::size_t> event_index;
    std::string field;   // substring of DecodeError::field; empty matches anything
    std::string detail;  // substring of DecodeError::detail
    std::size_t good_events = 0;
};

void PrintTo(const MalformedCase& c, std::ostream* os) {
    *os << c.name;
}

MalformedCase fatal_case(std::string name,
                         std::string bytes,
                         DecodeErrc code,
                         std::string field,
                         std::string detail,
                         std::size_t good_events = 0,
                         std::optional<std::size_t> in_event = std::nullopt) {
    return {std::move(name),  std::move(bytes),  true,       code, in_event,
            std::move(field), std::move(detail), good_events};
}

// Puts `bad_event` between two good events: a positional BlockStored (hash 1) and a map
// BlockRemoved (hash 2).
std::string between_good(const std::string& bad_event) {
    return batch_of({good_stored(1), bad_event, good_removed_map(2)});
}

MalformedCase event_case(std::string name,
                         const std::string& bad_event,
                         DecodeErrc code,
                         std::string field,
                         std::string detail) {
    return {std::move(name),  between_good(bad_event), false, code, 1,
            std::move(field), std::move(detail),       2};
}

// A fatal error inside the middle event: the first good event is kept, the rest is unreadable.
MalformedCase fatal_event_case(std::string name,
                               const std::string& bad_event,
                               DecodeErrc code,
                               std::string detail) {
    return fatal_case(std::move(name), between_good(bad_event), code, "", std::move(detail), 1, 1);
}

std::string hex_bytes(const char* hex) {
    return from_hex(hex);
}

std::string stored_with(const char* hashes_hex) {
    MsgBuilder b;
    b.array(2).str("BlockStored").hex(hashes_hex);
    return b.bytes();
}

// ["BlockStored", [1], parent, tokens, block_size, lora_id, medium, lora_name, extra_keys]
std::string stored9(const char* parent_hex,
                    const char* tokens_hex,
                    const char* block_size_hex,
                    const char* medium_hex,
                    const char* extra_keys_hex) {
    MsgBuilder b;
    b.array(9).str("BlockStored").array(1).uint(1).hex(parent_hex).hex(tokens_hex);
    b.hex(block_size_hex).nil().hex(medium_hex).nil().hex(extra_keys_hex);
    return b.bytes();
}

std::string nested_arrays(std::size_t depth) {
    std::string out(depth, '\x91');
    out += '\x01';
    return out;
}

std::vector<MalformedCase> malformed_cases() {
    std::vector<MalformedCase> c;

    // --- The envelope (fatal) --------------------------------------------------------------
    c.push_back(fatal_case("EmptyPayload", "", DecodeErrc::kTruncated, "",
                           "payload ends where a value should start"));
    c.push_back(fatal_case("TruncatedInsideTs", hex_bytes("93cb41d954"), DecodeErrc::kTruncated,
                           "ts", "8-byte field"));
    c.push_back(fatal_case("TruncatedAfterEnvelopeHeader", hex_bytes("93"),
                           DecodeErrc::kLengthExceedsInput, "", "declares 3 elements"));
    c.push_back(fatal_case("TruncatedBeforeRank", envelope_hex("90"), DecodeErrc::kTruncated,
                           "data_parallel_rank", "payload ends"));
    c.push_back(
        fatal_case("RootNil", hex_bytes("c0"), DecodeErrc::kBadEnvelope, "", "root is nil"));
    c.push_back(
        fatal_case("RootInt", hex_bytes("05"), DecodeErrc::kBadEnvelope, "", "root is int"));
    c.push_back(
        fatal_case("RootStr", hex_bytes("a3616263"), DecodeErrc::kBadEnvelope, "", "root is str"));
    c.push_back(fatal_case("RootBin", hex_bytes("c403010203"), DecodeErrc::kBadEnvelope, "",
                           "root is bin"));
    c.push_back(
        fatal_case("RootInvalidByteC1", hex_bytes("c1"), DecodeErrc::kInvalidByte, "", "0xc1"));
    c.push_back(fatal_case("EnvelopeArrayOfZero", hex_bytes("90"), DecodeErrc::kBadEnvelope, "",
                           "0 elements"));
    c.push_back(fatal_case("EnvelopeArrayOfOne", hex_bytes(std::string("91").append(kTs).c_str()),
                           DecodeErrc::kBadEnvelope, "", "1 elements"));
    c.push_back(
        fatal_case("TsAsString", hex_bytes("93a1319000"), DecodeErrc::kWrongType, "ts", "got str"));
    c.push_back(
        fatal_case("TsInvalidByte", hex_bytes("93c19000"), DecodeErrc::kInvalidByte, "ts", "0xc1"));
    c.push_back(fatal_case("EventsNotAnArray", envelope_hex("8000"), DecodeErrc::kWrongType,
                           "events", "expected array, got map"));
    c.push_back(fatal_case("EventsAsNil", envelope_hex("c000"), DecodeErrc::kWrongType, "events",
                           "got nil"));
    c.push_back(fatal_case("RankAsString", envelope_hex("90a130"), DecodeErrc::kWrongType,
                           "data_parallel_rank", "expected int or nil, got str"));
    c.push_back(fatal_case("RankUint64AboveInt64Max", envelope_hex("90cf8000000000000000"),
                           DecodeErrc::kOutOfRange, "data_parallel_rank",
                           "9223372036854775808 does not fit in int64"));
    c.push_back(fatal_case("TrailingBytesAfterEnvelope",
                           batch_of({good_stored(1), good_removed_map(2)}) + hex_bytes("c0c0"),
                           DecodeErrc::kTrailingBytes, "", "2 bytes after the envelope", 2));
    c.push_back(fatal_case("MapEnvelopeWithoutTs", hex_bytes("81a66576656e747390"),
                           DecodeErrc::kBadEnvelope, "", "no \"ts\" key"));
    c.push_back(fatal_case("MapEnvelopeWithoutEvents",
                           hex_bytes(std::string("81a27473").append(kTs).c_str()),
                           DecodeErrc::kBadEnvelope, "", "no \"events\" key"));
    c.push_back(fatal_case("MapEnvelopeNonStringKey", hex_bytes("820102a27473cb3ff0000000000000"),
                           DecodeErrc::kWrongType, "envelope key", "expected str, got int"));

    // --- Declared lengths far beyond the payload (fatal, no huge reservation) -------------
    c.push_back(fatal_case("RootArray32Huge", hex_bytes("ddffffffff"),
                           DecodeErrc::kLengthExceedsInput, "", "declares 4294967295 elements"));
    c.push_back(fatal_case("RootMap32Huge", hex_bytes("dfffffffff"),
                           DecodeErrc::kLengthExceedsInput, "", "declares 4294967295 elements"));
    c.push_back(fatal_case("EventsArray32Huge", envelope_hex("ddffffffff00"),
                           DecodeErrc::kLengthExceedsInput, "events", "4294967295"));
    c.push_back(fatal_event_case("Str32HugeTag", hex_bytes("91dbffffffff"),
                                 DecodeErrc::kLengthExceedsInput, "4294967295"));
    c.push_back(fatal_event_case("Bin32HugeHash", stored_with("91c6ffffffff"),
                                 DecodeErrc::kLengthExceedsInput, "4294967295"));
    c.push_back(fatal_event_case("Array32HugeHashes", stored_with("ddffffffff"),
                                 DecodeErrc::kLengthExceedsInput, "4294967295"));
    c.push_back(fatal_event_case("Map32HugeEvent", hex_bytes("dfffffffff"),
                                 DecodeErrc::kLengthExceedsInput, "4294967295"));

    // --- Events that cannot be stepped over (fatal, the first sibling kept) ---------------
    c.push_back(fatal_event_case("InvalidByteInsideEvent", stored_with("91c1"),
                                 DecodeErrc::kInvalidByte, "0xc1"));
    c.push_back(fatal_event_case("Nesting100DeepInsideEvent",
                                 stored_with(kvevents::to_hex(nested_arrays(100)).c_str()),
                                 DecodeErrc::kTooDeep, "nesting deeper than"));
    c.push_back(fatal_case("TruncatedInsideUint64Hash",
                           envelope_hex("9192ab426c6f636b53746f72656491cf11223344"),
                           DecodeErrc::kTruncated, "", "8-byte field", 0, 0));
    c.push_back(fatal_case("TruncatedInsideStrHeader", envelope_hex("9191da00"),
                           DecodeErrc::kTruncated, "", "2-byte field", 0, 0));
    c.push_back(fatal_case("TruncatedInsideTagBody", envelope_hex("9191ab426c6f63"),
                           DecodeErrc::kLengthExceedsInput, "", "declared length 11", 0, 0));

    // --- One bad event between two good ones (per-event) ----------------------------------
    c.push_back(
        event_case("EventAsInt", hex_bytes("05"), DecodeErrc::kWrongType, "", "event is int"));
    c.push_back(event_case("EventAsExt", hex_bytes("d5010000"), DecodeErrc::kWrongType, "",
                           "event is ext"));
    c.push_back(event_case("EmptyEventArray", hex_bytes("90"), DecodeErrc::kBadEvent, "",
                           "event array is empty"));
    c.push_back(event_case("EventTagAsInt", hex_bytes("92059101"), DecodeErrc::kWrongType, "type",
                           "str event tag, got int"));
    {
        MsgBuilder b;
        b.map(1).str("block_hashes").array(1).uint(1);
        c.push_back(event_case("MapEventWithoutType", b.bytes(), DecodeErrc::kBadEvent, "type",
                               "no \"type\" key"));
    }
    {
        MsgBuilder b;
        b.map(2).uint(1).str("x").str("type").str("BlockStored");
        c.push_back(event_case("MapEventNonStringKey", b.bytes(), DecodeErrc::kWrongType, "key",
                               "expected str, got int"));
    }
    {
        MsgBuilder b;
        b.map(2).str("type").uint(5).str("block_hashes").array(0);
        c.push_back(
            event_case("MapEventTypeAsInt", b.bytes(), DecodeErrc::kWrongType, "type", "got int"));
    }
    {
        MsgBuilder b;
        b.array(1).str("BlockStored");
        c.push_back(event_case("PositionalStoredWithoutHashes", b.bytes(), DecodeErrc::kBadEvent,
                               "block_hashes", "BlockStored has no block_hashes"));
    }
    {
        MsgBuilder b;
        b.array(1).str("BlockRemoved");
        c.push_back(event_case("PositionalRemovedWithoutHashes", b.bytes(), DecodeErrc::kBadEvent,
                               "block_hashes", "BlockRemoved has no block_hashes"));
    }
    {
        MsgBuilder b;
        b.map(3).str("type").str("BlockStored").str("token_ids").array(1).uint(1);
        b.str("medium").str("GPU");
        c.push_back(event_case("MapStoredWithoutHashes", b.bytes(), DecodeErrc::kBadEvent,
                               "block_hashes", "BlockStored has no block_hashes"));
    }
    c.push_back(event_case("BlockHashesAsMap", stored_with("81a16101"), DecodeErrc::kWrongType,
                           "block_hashes", "expected array, got map"));
    c.push_back(event_case("HashAsStr", stored_with("9201a3616263"), DecodeErrc::kWrongType,
                           "block_hashes[1]", "expected int or bin hash, got str"));
    c.push_back(event_case("HashAsFloat", stored_with("91cb3ff0000000000000"),
                           DecodeErrc::kWrongType, "block_hashes[0]", "got float"));
    c.push_back(event_case("HashAsExt", stored_with("91d40100"), DecodeErrc::kWrongType,
                           "block_hashes[0]", "got ext"));
    c.push_back(event_case("BlockHashesAsExt", stored_with("c7010501"), DecodeErrc::kWrongType,
                           "block_hashes", "got ext"));
    c.push_back(event_case("BinHashOfZeroBytes", stored_with("91c400"), DecodeErrc::kBadHash,
                           "block_hashes[0]", "digest of 0 bytes"));
    c.push_back(
        event_case("BinHashOf33Bytes",
                   stored_with(("91c421" + kvevents::to_hex(std::string(33, '\x11'))).c_str()),
                   DecodeErrc::kBadHash, "block_hashes[0]", "digest of 33 bytes"));
    c.push_back(event_case("ParentAsStr", stored9("a178", "90", "04", "c0", "c0"),
                           DecodeErrc::kWrongType, "parent_block_hash", "got str"));
    c.push_back(event_case("TokenIdsContainFloat",
                           stored9("c0", "9201cb4004000000000000", "04", "c0", "c0"),
                           DecodeErrc::kWrongType, "token_ids[1]", "got float"));
    c.push_back(event_case("TokenIdAboveInt64Max",
                           stored9("c0", "91cf8000000000000000", "04", "c0", "c0"),
                           DecodeErrc::kOutOfRange, "token_ids[0]", "does not fit in int64"));
    c.push_back(event_case("BigramPairOfThree", stored9("c0", "9292010293020304", "04", "c0", "c0"),
                           DecodeErrc::kWrongType, "token_ids[1]", "pair"));
    c.push_back(event_case("TokenIdsAsMap", stored9("c0", "80", "04", "c0", "c0"),
                           DecodeErrc::kWrongType, "token_ids", "got map"));
    c.push_back(event_case("BlockSizeAsString", stored9("c0", "90", "a134", "c0", "c0"),
                           DecodeErrc::kWrongType, "block_size", "expected int or nil, got str"));
    c.push_back(event_case(
        "BlockSizeAboveInt64Max", stored9("c0", "90", "cf8000000000000000", "c0", "c0"),
        DecodeErrc::kOutOfRange, "block_size", "9223372036854775808 does not fit in int64"));
    c.push_back(event_case("BlockSizeAboveInt32Max", stored9("c0", "90", "ce80000000", "c0", "c0"),
                           DecodeErrc::kOutOfRange, "block_size",
                           "2147483648 does not fit in int32"));
    c.push_back(event_case("MediumAsInt", stored9("c0", "90", "04", "05", "c0"),
                           DecodeErrc::kWrongType, "medium", "expected str or nil, got int"));
    c.push_back(event_case("ExtraKeysEntryAsInt", stored9("c0", "90", "04", "c0", "9105"),
                           DecodeErrc::kWrongType, "extra_keys[0]",
                           "expected array or nil, got int"));
    c.push_back(event_case("ExtraKeysAsString", stored9("c0", "90", "04", "c0", "a178"),
                           DecodeErrc::kWrongType, "extra_keys", "got str"));
    c.push_back(event_case("ExtraKeysValueAsExt", stored9("c0", "90", "04", "c0", "9191d40100"),
                           DecodeErrc::kWrongType, "extra_keys[0]", "got ext"));
    {
        MsgBuilder b;
        b.map(3).str("type").str("BlockStored").str("block_hashes").array(1).uint(1);
        b.str("ownership").hex("c7010561");
        c.push_back(event_case("OwnershipAsExt", b.bytes(), DecodeErrc::kWrongType, "ownership",
                               "got ext"));
    }
    {
        MsgBuilder b;
        b.map(3).str("type").str("BlockStored").str("block_hashes").array(1).uint(1);
        b.str("lora_name").uint(3);
        c.push_back(event_case("MapLoraNameAsInt", b.bytes(), DecodeErrc::kWrongType, "lora_name",
                               "got int"));
    }
    {
        MsgBuilder b;
        b.array(4).str("BlockRemoved").array(1).uint(1).nil().boolean(true);
        c.push_back(event_case("RemovedGroupIdxAsBool", b.bytes(), DecodeErrc::kWrongType,
                               "group_idx", "got bool"));
    }
    {
        MsgBuilder b;
        b.array(4).str("BlockRemoved").array(1).uint(1).nil().uint(32768);
        c.push_back(event_case("RemovedGroupIdxAboveInt16Max", b.bytes(), DecodeErrc::kOutOfRange,
                               "group_idx", "32768 does not fit in int16"));
    }
    {
        MsgBuilder b;
        b.map(3).str("type").str("BlockRemoved").str("block_hashes").array(1).uint(1);
        b.str("locality").array(0);
        c.push_back(event_case("MapRemovedLocalityAsArray", b.bytes(), DecodeErrc::kWrongType,
                               "locality", "got array"));
    }
    {
        MsgBuilder b;
        b.array(8).str("BlockStored").array(1).uint(1).nil().array(0).uint(1).nil().str("GPU");
        b.map(1).str("cache_salt").uint(5);
        c.push_back(event_case("SglangCacheSaltAsInt", b.bytes(), DecodeErrc::kWrongType,
                               "cache_salt", "got int"));
    }
    return c;
}

class MalformedTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedTest, ReportsThePreciseError) {
    const MalformedCase& c = GetParam();
    const DecodeResult r = test::decode(c.bytes);
    EXPECT_FALSE(r.ok());

    const DecodeError* error = nullptr;
    if (c.fatal) {
        ASSERT_TRUE(r.fatal.has_value()) << "expected a fatal error";
        EXPECT_TRUE(r.event_errors.empty()) << r.event_errors[0].message();
        error = &*r.fatal;
        EXPECT_FALSE(error->event_index.has_value());
    } else {
        ASSERT_FALSE(r.fatal.has_value()) << r.fatal->message();
        ASSERT_EQ(r.event_errors.size(), 1u);
        error = &r.event_errors[0];
        EXPECT_EQ(error->event_index, c.event_index);
    }
    const std::string message = error->message();
    EXPECT_EQ(error->code, c.code) << "got " << to_string(error->code) << ": " << message;
    EXPECT_THAT(error->field, HasSubstr(c.field)) << message;
    EXPECT_THAT(error->detail, HasSubstr(c.detail)) << message;
    EXPECT_LE(error->offset, c.bytes.size()) << message;
    EXPECT_THAT(message, HasSubstr(to_string(c.code)));
    if (c.event_index) {
        EXPECT_THAT(message, HasSubstr("event " + std::to_string(*c.event_index))) << message;
    }
    if (!c.field.empty()) {
        EXPECT_THAT(message, HasSubstr("field " + c.field)) << message;
    }

    ASSERT_EQ(r.batch.events.size(), c.good_events) << message;
    if (c.good_events >= 1 && c.event_index == 1u) {
        const auto* first = std::get_if<BlockStored>(&r.batch.events[0]);
        ASSERT_NE(first, nullptr);
        EXPECT_EQ(first->block_hashes, std::vector<BlockHash>{BlockHash::from_unsigned(1)});
    }
    if (c.good_events == 2 && c.event_index == 1u) {
        const auto* last = std::get_if<BlockRemoved>(&r.batch.events[1]);
        ASSERT_NE(last, nullptr);
        EXPECT_EQ(last->block_hashes, std::vector<BlockHash>{BlockHash::from_unsigned(2)});
        EXPECT_EQ(r.batch.data_parallel_rank, 0);
    }
}

INSTANTIATE_TEST_SUITE_P(Table,
                         MalformedTest,
                         ::testing::ValuesIn(malformed_cases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& param_info) {
                             return param_info.param.name;
                         });

TEST(MalformedTableTest, HasAtLeastThirtyRowsOfEachKind) {
    std::size_t fatal = 0;
    std::size_t per_event = 0;
    for (const MalformedCase& c : malformed_cases()) {
        (c.fatal ? fatal : per_event) += 1;
    }
    EXPECT_GE(fatal + per_event, 30u);
    EXPECT_GE(per_event, 20u);
}

TEST(MalformedDecodeTest, MessageNamesEventFieldAndOffset) {
    MsgBuilder bad;
    bad.array(2).str("BlockStored").array(2).uint(1).str("abc");
    const std::string good = good_stored(1);
    const std::string bytes = batch_of({good, bad.bytes()});
    const DecodeResult r = test::decode(bytes);
    ASSERT_EQ(r.event_errors.size(), 1u);
    // envelope header, ts, events header, the good event, then inside the bad one: its header,
    // the 12-byte tag, the hashes header and the first hash.
    const std::size_t offset = 1 + 9 + 1 + good.size() + 1 + 12 + 1 + 1;
    EXPECT_EQ(r.event_errors[0].offset, offset);
    EXPECT_EQ(r.event_errors[0].message(), "event 1, field block_hashes[1], offset " +
                                               std::to_string(offset) +
                                               ": wrong type: expected int or bin hash, got str");
    ASSERT_EQ(r.batch.events.size(), 1u);
}

TEST(MalformedDecodeTest, SeveralBadEventsEachReportedWithTheirIndex) {
    const DecodeResult r = test::decode(batch_of({
        hex_bytes("05"),
        good_stored(1),
        stored_with("91c400"),
        good_removed_map(2),
        hex_bytes("90"),
    }));
    ASSERT_FALSE(r.fatal.has_value()) << r.fatal->message();
    ASSERT_EQ(r.event_errors.size(), 3u);
    EXPECT_EQ(r.event_errors[0].event_index, 0u);
    EXPECT_EQ(r.event_errors[0].code, DecodeErrc::kWrongType);
    EXPECT_EQ(r.event_errors[1].event_index, 2u);
    EXPECT_EQ(r.event_errors[1].code, DecodeErrc::kBadHash);
    EXPECT_EQ(r.event_errors[2].event_index, 4u);
    EXPECT_EQ(r.event_errors[2].code, DecodeErrc::kBadEvent);
    ASSERT_EQ(r.batch.events.size(), 2u);
    EXPECT_TRUE(std::holds_alternative<BlockStored>(r.batch.events[0]));
    EXPECT_TRUE(std::holds_alternative<BlockRemoved>(r.batch.events[1]));
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
}

TEST(MalformedDecodeTest, EveryTruncationOfEveryExampleFailsCleanly) {
    for (const auto& [name, bytes] : test::wire_examples()) {
        ASSERT_TRUE(test::decode(bytes).ok()) << name;
        for (std::size_t size = 0; size < bytes.size(); ++size) {
            SCOPED_TRACE(name + " cut to " + std::to_string(size) + " bytes");
            // A copy of exactly `size` bytes, so reading past the cut is visible to sanitizers.
            const std::string prefix = bytes.substr(0, size);
            const DecodeResult r = test::decode(prefix);
            ASSERT_TRUE(r.fatal.has_value());
            EXPECT_TRUE(r.fatal->code == DecodeErrc::kTruncated ||
                        r.fatal->code == DecodeErrc::kLengthExceedsInput)
                << r.fatal->message();
            EXPECT_LE(r.fatal->offset, size);
        }
    }
}

TEST(MalformedDecodeTest, NullBufferWithNonZeroSize) {
    const DecodeResult r = decode_batch(nullptr, 5);
    ASSERT_TRUE(r.fatal.has_value());
    EXPECT_EQ(r.fatal->code, DecodeErrc::kTruncated);
    const DecodeResult empty = decode_batch(nullptr, 0);
    ASSERT_TRUE(empty.fatal.has_value());
    EXPECT_EQ(empty.fatal->code, DecodeErrc::kTruncated);
}

TEST(MalformedDecodeTest, HugeDeclaredLengthsAllocateNothingLarge) {
    const std::vector<std::string> payloads = {
        hex_bytes("ddffffffff"),
        hex_bytes("dfffffffff"),
        envelope_hex("ddffffffff00"),
        envelope_hex("dcffff00"),
        between_good(hex_bytes("91dbffffffff")),
        between_good(stored_with("91c6ffffffff")),
        between_good(stored_with("ddffffffff")),
        between_good(hex_bytes("dfffffffff")),
        between_good(stored9("c0", "ddffffffff", "04", "c0", "c0")),
        between_good(stored9("c0", "90", "04", "c0", "ddffffffff")),
        between_good(stored9("c0", "90", "04", "c0", "91ddffffffff")),
    };
    for (const std::string& payload : payloads) {
        SCOPED_TRACE(kvevents::to_hex(payload));
        t_largest_allocation = 0;
        const DecodeResult r = test::decode(payload);
        const std::size_t largest = t_largest_allocation;
        ASSERT_TRUE(r.fatal.has_value());
        EXPECT_EQ(r.fatal->code, DecodeErrc::kLengthExceedsInput) << r.fatal->message();
        // Far below anything proportional to the declared 4 G elements.
        if (kAllocationHook) {
            EXPECT_LT(largest, std::size_t{1} << 20);
        }
    }
}

TEST(MalformedDecodeTest, AllocationTrackingSeesLargeAllocations) {
    // Guards the check above: the tracking hook must see a real large allocation.
    if (!kAllocationHook)
        GTEST_SKIP() << "allocation hook unavailable under ThreadSanitizer";
    t_largest_allocation = 0;
    std::vector<char> big(std::size_t{2} << 20);
    EXPECT_GE(t_largest_allocation, big.size());
}

TEST(MalformedDecodeTest, DepthLimitIsConfigurable) {
    MsgBuilder ev;
    ev.map(3).str("type").str("BlockStored").str("block_hashes").array(1).uint(1);
    ev.str("deep").raw(nested_arrays(6));
    const std::string bytes = batch_of({ev.bytes()});

    const DecodeResult relaxed = test::decode(bytes);
    ASSERT_TRUE(relaxed.ok()) << (relaxed.fatal ? relaxed.fatal->message() : "event error");
    ASSERT_EQ(relaxed.batch.events.size(), 1u);
    const auto& stored = std::get<BlockStored>(relaxed.batch.events[0]);
    ASSERT_EQ(stored.extras.or_empty().other_fields.size(), 1u);
    EXPECT_EQ(stored.extras.or_empty().other_fields[0].name, "deep");

    DecodeLimits strict;
    strict.max_depth = 4;
    const DecodeResult r = decode_batch(bytes.data(), bytes.size(), strict);
    EXPECT_FALSE(r.ok());
    const DecodeError& e = r.fatal ? *r.fatal : r.event_errors.at(0);
    EXPECT_EQ(e.code, DecodeErrc::kTooDeep) << e.message();
    EXPECT_THAT(e.message(), HasSubstr("event 0"));
}

}  // namespace
}  // namespace kvevents

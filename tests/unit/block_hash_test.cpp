#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/block_hash.h>
#include <kvevents/events.h>

namespace kvevents {
namespace {

constexpr std::uint64_t kH1 = 0x1122334455667788ULL;
constexpr std::uint64_t kH2 = 0xF0E1D2C3B4A59687ULL;
constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

std::vector<std::uint8_t> sequence_bytes(std::uint8_t first, std::size_t count) {
    std::vector<std::uint8_t> out(count);
    for (std::size_t i = 0; i < count; ++i) {
        out[i] = static_cast<std::uint8_t>(first + i);
    }
    return out;
}

BlockHash digest_of(const std::vector<std::uint8_t>& bytes) {
    return BlockHash::from_digest(bytes.data(), bytes.size());
}

TEST(BlockHashTest, DefaultIsIntegerZero) {
    const BlockHash h;
    EXPECT_TRUE(h.is_integer());
    EXPECT_FALSE(h.is_digest());
    EXPECT_FALSE(h.is_negative());
    EXPECT_EQ(h.to_u64(), 0u);
    EXPECT_EQ(h.digest_size(), 0u);
    EXPECT_EQ(h.to_string(), "0");
}

TEST(BlockHashTest, FromUnsignedKeepsValue) {
    const BlockHash h = BlockHash::from_unsigned(kH2);
    EXPECT_EQ(h.kind(), BlockHash::Kind::kInteger);
    EXPECT_TRUE(h.is_integer());
    EXPECT_FALSE(h.is_negative());
    EXPECT_EQ(h.to_u64(), kH2);
    EXPECT_EQ(h.digest_size(), 0u);
}

TEST(BlockHashTest, FromSignedNegativeKeepsBitPatternAndSign) {
    const BlockHash h = BlockHash::from_signed(static_cast<std::int64_t>(kH2));
    EXPECT_TRUE(h.is_integer());
    EXPECT_TRUE(h.is_negative());
    EXPECT_EQ(h.to_u64(), kH2);
}

TEST(BlockHashTest, FromSignedNonNegativeIsNotNegative) {
    EXPECT_FALSE(BlockHash::from_signed(0).is_negative());
    EXPECT_FALSE(BlockHash::from_signed(42).is_negative());
    EXPECT_EQ(BlockHash::from_signed(42).to_u64(), 42u);
    EXPECT_TRUE(BlockHash::from_signed(-1).is_negative());
    EXPECT_EQ(BlockHash::from_signed(-1).to_u64(), kU64Max);
}

TEST(BlockHashTest, FromDigestKeepsBytes) {
    const std::vector<std::uint8_t> bytes = sequence_bytes(0x00, 32);
    const BlockHash h = digest_of(bytes);
    EXPECT_EQ(h.kind(), BlockHash::Kind::kDigest);
    EXPECT_TRUE(h.is_digest());
    EXPECT_FALSE(h.is_integer());
    EXPECT_FALSE(h.is_negative());
    ASSERT_EQ(h.digest_size(), 32u);
    EXPECT_EQ(std::vector<std::uint8_t>(h.digest_data(), h.digest_data() + h.digest_size()), bytes);
}

TEST(BlockHashTest, FromDigestCopiesInput) {
    std::vector<std::uint8_t> bytes = sequence_bytes(0x10, 16);
    const BlockHash h = digest_of(bytes);
    bytes[0] = 0xff;
    EXPECT_EQ(h.digest_data()[0], 0x10);
}

TEST(BlockHashTest, FromDigestRejectsEmptyAndOversized) {
    const std::vector<std::uint8_t> bytes = sequence_bytes(0, 33);
    EXPECT_THROW(BlockHash::from_digest(bytes.data(), 0), std::invalid_argument);
    EXPECT_THROW(BlockHash::from_digest(bytes.data(), 33), std::invalid_argument);
    EXPECT_NO_THROW(BlockHash::from_digest(bytes.data(), 1));
    EXPECT_NO_THROW(BlockHash::from_digest(bytes.data(), BlockHash::kMaxDigestSize));
}

TEST(BlockHashTest, SignedAndUnsignedWithSameBitsAreEqual) {
    const BlockHash u = BlockHash::from_unsigned(kH2);
    const BlockHash s = BlockHash::from_signed(static_cast<std::int64_t>(kH2));
    EXPECT_EQ(u, s);
    EXPECT_FALSE(u != s);
    EXPECT_FALSE(u < s);
    EXPECT_FALSE(s < u);
    EXPECT_EQ(std::hash<BlockHash>{}(u), std::hash<BlockHash>{}(s));
    EXPECT_EQ(BlockHash::from_signed(-1), BlockHash::from_unsigned(kU64Max));
}

TEST(BlockHashTest, DifferentValuesAreNotEqual) {
    EXPECT_NE(BlockHash::from_unsigned(kH1), BlockHash::from_unsigned(kH2));
    EXPECT_NE(BlockHash::from_unsigned(1), BlockHash::from_signed(-1));
}

TEST(BlockHashTest, DigestAndIntegerNeverEqualEvenWithSameRoutingKey) {
    // A 16-byte digest whose last 8 bytes spell H1 has the same to_u64 as the integer H1.
    std::vector<std::uint8_t> bytes(16, 0);
    for (std::size_t i = 0; i < 8; ++i) {
        bytes[8 + i] = static_cast<std::uint8_t>(kH1 >> (56 - 8 * i));
    }
    const BlockHash digest = digest_of(bytes);
    const BlockHash integer = BlockHash::from_unsigned(kH1);
    ASSERT_EQ(digest.to_u64(), integer.to_u64());
    EXPECT_NE(digest, integer);
}

TEST(BlockHashTest, DigestEqualityNeedsSameLengthAndBytes) {
    const std::vector<std::uint8_t> a = sequence_bytes(0, 16);
    std::vector<std::uint8_t> b = a;
    EXPECT_EQ(digest_of(a), digest_of(b));
    b[15] ^= 1;
    EXPECT_NE(digest_of(a), digest_of(b));
    const std::vector<std::uint8_t> prefix(a.begin(), a.begin() + 8);
    EXPECT_NE(digest_of(a), digest_of(prefix));
}

TEST(BlockHashTest, IntegersOrderBeforeDigests) {
    const BlockHash big_int = BlockHash::from_unsigned(kU64Max);
    const BlockHash small_digest = digest_of({0x00});
    EXPECT_TRUE(big_int < small_digest);
    EXPECT_FALSE(small_digest < big_int);
}

TEST(BlockHashTest, IntegersOrderByBitPattern) {
    EXPECT_TRUE(BlockHash::from_unsigned(1) < BlockHash::from_unsigned(2));
    EXPECT_FALSE(BlockHash::from_unsigned(2) < BlockHash::from_unsigned(1));
    EXPECT_FALSE(BlockHash::from_unsigned(2) < BlockHash::from_unsigned(2));
    // -1 is 0xffff..ff as a bit pattern, so it sorts after every positive value.
    EXPECT_TRUE(BlockHash::from_unsigned(kH1) < BlockHash::from_signed(-1));
    EXPECT_TRUE(BlockHash::from_unsigned(kH1) <
                BlockHash::from_signed(static_cast<std::int64_t>(kH2)));
}

TEST(BlockHashTest, DigestsOrderBytewiseThenByLength) {
    EXPECT_TRUE(digest_of({0x01, 0xff}) < digest_of({0x02, 0x00}));
    EXPECT_FALSE(digest_of({0x02, 0x00}) < digest_of({0x01, 0xff}));
    EXPECT_TRUE(digest_of({0x01}) < digest_of({0x01, 0x00}));
    EXPECT_FALSE(digest_of({0x01, 0x00}) < digest_of({0x01}));
    EXPECT_FALSE(digest_of({0x01, 0x02}) < digest_of({0x01, 0x02}));
}

TEST(BlockHashTest, UsableInUnorderedSet) {
    std::unordered_set<BlockHash> set;
    EXPECT_TRUE(set.insert(BlockHash::from_unsigned(kH2)).second);
    EXPECT_FALSE(set.insert(BlockHash::from_signed(static_cast<std::int64_t>(kH2))).second);
    EXPECT_TRUE(set.insert(BlockHash::from_unsigned(kH1)).second);
    EXPECT_TRUE(set.insert(digest_of(sequence_bytes(0, 32))).second);
    EXPECT_FALSE(set.insert(digest_of(sequence_bytes(0, 32))).second);
    EXPECT_TRUE(set.insert(digest_of(sequence_bytes(0, 16))).second);
    EXPECT_EQ(set.size(), 4u);
    EXPECT_EQ(set.count(BlockHash::from_signed(static_cast<std::int64_t>(kH2))), 1u);
    EXPECT_EQ(set.count(BlockHash::from_unsigned(3)), 0u);
}

TEST(BlockHashTest, ToStringIntegersInDecimal) {
    EXPECT_EQ(BlockHash::from_unsigned(0).to_string(), "0");
    EXPECT_EQ(BlockHash::from_unsigned(kH1).to_string(), "1234605616436508552");
    EXPECT_EQ(BlockHash::from_unsigned(kH2).to_string(), "17357386176853808775");
    EXPECT_EQ(BlockHash::from_unsigned(kU64Max).to_string(), "18446744073709551615");
}

TEST(BlockHashTest, ToStringNegativesKeepSign) {
    EXPECT_EQ(BlockHash::from_signed(-1).to_string(), "-1");
    EXPECT_EQ(BlockHash::from_signed(static_cast<std::int64_t>(kH2)).to_string(),
              "-1089357896855742841");
    EXPECT_EQ(BlockHash::from_signed(std::numeric_limits<std::int64_t>::min()).to_string(),
              "-9223372036854775808");
    EXPECT_EQ(BlockHash::from_signed(5).to_string(), "5");
}

TEST(BlockHashTest, ToStringDigestIsLowercaseHex) {
    EXPECT_EQ(digest_of({0xab, 0xcd, 0xef, 0x01}).to_string(), "abcdef01");
    EXPECT_EQ(digest_of(sequence_bytes(0, 16)).to_string(), "000102030405060708090a0b0c0d0e0f");
    EXPECT_EQ(digest_of(sequence_bytes(0xe0, 32)).to_string(),
              "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
}

TEST(BlockHashTest, ToU64OfDigestIsLastEightBytesBigEndian) {
    EXPECT_EQ(digest_of(sequence_bytes(0x00, 32)).to_u64(), 0x18191a1b1c1d1e1fULL);
    EXPECT_EQ(digest_of(sequence_bytes(0x20, 32)).to_u64(), 0x38393a3b3c3d3e3fULL);
    EXPECT_EQ(digest_of(sequence_bytes(0x00, 16)).to_u64(), 0x08090a0b0c0d0e0fULL);
    EXPECT_EQ(digest_of(sequence_bytes(0x01, 8)).to_u64(), 0x0102030405060708ULL);
}

TEST(BlockHashTest, ToU64OfShortDigestUsesAllBytes) {
    EXPECT_EQ(digest_of({0xab}).to_u64(), 0xabULL);
    EXPECT_EQ(digest_of({0x01, 0x02, 0x03}).to_u64(), 0x010203ULL);
    EXPECT_EQ(digest_of(sequence_bytes(0x01, 7)).to_u64(), 0x01020304050607ULL);
}

TEST(BlockHashTest, IsSixteenBytesAndMovesWithoutThrowing) {
    static_assert(sizeof(BlockHash) == 16);
    static_assert(std::is_nothrow_move_constructible_v<BlockHash>);
    static_assert(std::is_nothrow_move_assignable_v<BlockHash>);
}

BlockHash digest_of(std::size_t size, std::uint8_t first) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(first + i);
    return BlockHash::from_digest(bytes.data(), bytes.size());
}

TEST(BlockHashTest, EveryDigestLengthKeepsItsBytesThroughCopiesAndMoves) {
    for (std::size_t size = 1; size <= BlockHash::kMaxDigestSize; ++size) {
        SCOPED_TRACE(size);
        const BlockHash original = digest_of(size, 0xa0);
        BlockHash copy = original;
        EXPECT_EQ(copy, original);
        EXPECT_EQ(copy.digest_size(), size);
        EXPECT_NE(copy.digest_data(), original.digest_data());  // its own bytes, not shared
        BlockHash moved = std::move(copy);
        EXPECT_EQ(moved, original);
        EXPECT_EQ(moved.to_u64(), original.to_u64());
        EXPECT_EQ(moved.to_string(), original.to_string());
        BlockHash assigned = BlockHash::from_unsigned(1);
        assigned = original;
        EXPECT_EQ(assigned, original);
        assigned = digest_of(size, 0x10);  // replaces (and frees) the bytes it held
        EXPECT_NE(assigned, original);
        assigned = BlockHash::from_unsigned(7);
        EXPECT_TRUE(assigned.is_integer());
        EXPECT_EQ(assigned.digest_size(), 0u);
    }
}

TEST(BlockHashTest, SelfAssignmentKeepsTheDigest) {
    BlockHash h = digest_of(32, 1);
    const BlockHash expected = h;
    const BlockHash& alias = h;
    h = alias;
    EXPECT_EQ(h, expected);
    BlockHash& same = h;
    h = std::move(same);
    EXPECT_EQ(h, expected);
}

TEST(EventModelTest, EventsAreCompact) {
    // The sizes docs/benchmarks.md and the README quote; a field added inline shows here.
    EXPECT_EQ(sizeof(Event), 120u);
    EXPECT_EQ(sizeof(BlockRemoved), 40u);
}

TEST(EventModelTest, KnownNamesBecomeCodesAndOthersAreKeptWhole) {
    BlockStored ev;
    EXPECT_EQ(ev.medium_name(), "");
    ev.set_medium("CPU");
    EXPECT_EQ(ev.medium, Medium::kCpu);
    EXPECT_FALSE(ev.extras);  // a known name allocates nothing
    ev.set_medium("cuda:1");
    EXPECT_EQ(ev.medium, Medium::kOther);
    EXPECT_EQ(ev.medium_name(), "cuda:1");
    ev.set_medium("GPU");
    EXPECT_EQ(ev.medium_name(), "GPU");
    EXPECT_EQ(ev.extras.or_empty().medium_name, "");
    ev.set_medium(std::nullopt);
    EXPECT_EQ(ev.medium, Medium::kUnset);
    ev.set_kv_cache_spec_kind("sliding_window");
    EXPECT_EQ(ev.kv_cache_spec_kind, CacheSpecKind::kSlidingWindow);
    ev.set_kv_cache_spec_kind("linear_attention");
    EXPECT_EQ(ev.kv_cache_spec_kind_name(), "linear_attention");
    for (const char* name : {"GPU", "CPU", "CPU_PINNED", "DISK", "EXTERNAL", "FS", "OBJ", "STORAGE",
                             "SHARED_STORAGE"}) {
        EXPECT_STREQ(to_string(medium_from_name(name)), name);
    }
    EXPECT_STREQ(to_string(Medium::kOther), "");

    BlockRemoved removed;
    removed.set_medium("cpu");
    EXPECT_EQ(removed.medium, Medium::kOther);
    EXPECT_EQ(removed.medium_name(), "cpu");
}

TEST(EventModelTest, CopiesAreDeepAndEqualityIgnoresAnEmptyExtrasBlock) {
    BlockStored a;
    a.block_hashes.push_back(digest_of(32, 3));
    a.extras.ensure().lora_name = "adapter";
    BlockStored b = a;
    EXPECT_EQ(a, b);
    b.extras->lora_name = "other";
    EXPECT_EQ(*a.extras->lora_name, "adapter");
    EXPECT_FALSE(a == b);

    BlockStored plain;
    BlockStored with_empty_extras;
    with_empty_extras.extras.ensure();
    EXPECT_EQ(plain, with_empty_extras);
    with_empty_extras.extras.reset();
    EXPECT_FALSE(with_empty_extras.extras);

    BlockRemoved r1;
    BlockRemoved r2;
    r2.extras.ensure().locality = "LOCAL";
    EXPECT_FALSE(r1 == r2);
    r1 = r2;
    EXPECT_EQ(r1, r2);
    EXPECT_EQ(AllBlocksCleared{}, AllBlocksCleared{});
}

TEST(TokenIdsToBytesTest, FourBytesBigEndianEach) {
    EXPECT_EQ(token_ids_to_bytes({1, 2}), std::string("\0\0\0\1\0\0\0\2", 8));
    EXPECT_EQ(token_ids_to_bytes({}), "");
    EXPECT_EQ(token_ids_to_bytes({70000}), std::string("\x00\x01\x11\x70", 4));
    EXPECT_EQ(token_ids_to_bytes({0x7fffffff}), std::string("\x7f\xff\xff\xff", 4));
    EXPECT_EQ(token_ids_to_bytes({0xdeadbeef}), std::string("\xde\xad\xbe\xef", 4));
}

TEST(TokenIdsToBytesTest, TruncatesToLow32Bits) {
    EXPECT_EQ(token_ids_to_bytes({0x1234567890LL}), std::string("\x34\x56\x78\x90", 4));
    EXPECT_EQ(token_ids_to_bytes({-1}), std::string("\xff\xff\xff\xff", 4));
}

TEST(EventTypeNameTest, NamesEveryEventType) {
    EXPECT_STREQ(event_type_name(Event{BlockStored{}}), "BlockStored");
    EXPECT_STREQ(event_type_name(Event{BlockRemoved{}}), "BlockRemoved");
    EXPECT_STREQ(event_type_name(Event{AllBlocksCleared{}}), "AllBlocksCleared");
}

}  // namespace
}  // namespace kvevents

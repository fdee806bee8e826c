// Decodes every example of the wire-format reference (section 9, produced by the real msgspec
// encoder) and checks each field against the reference's description, then checks that the test
// encoder reproduces the same bytes for the matching era.

#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/decode.h>
#include <kvevents/events.h>
#include <kvevents/hex.h>
#include <kvevents/testing/encoder.h>

#include "test_helpers.h"

namespace kvevents {
namespace {

using test::counting_digest;
using test::kExampleTs;
using test::kH1;
using test::kH2;
using testing::WireEra;

const std::vector<std::int64_t> kTokens = {1, 2, 300, 70000};

// Decodes an example and checks it decoded cleanly.
DecodeResult decode_example(const std::string& name) {
    const std::string bytes = test::wire_example(name);
    DecodeResult result = test::decode(bytes);
    EXPECT_FALSE(result.fatal) << result.fatal->message();
    for (const DecodeError& e : result.event_errors) {
        ADD_FAILURE() << name << ": " << e.message();
    }
    EXPECT_TRUE(result.ok());
    EXPECT_EQ(result.unknown_events, 0u);
    EXPECT_TRUE(result.unknown_tags.empty());
    return result;
}

void expect_shape(const WireShape& shape,
                  bool map_envelope,
                  std::size_t envelope_size,
                  std::size_t positional_events,
                  std::size_t map_events) {
    EXPECT_EQ(shape.map_envelope, map_envelope);
    EXPECT_EQ(shape.envelope_size, envelope_size);
    EXPECT_EQ(shape.positional_events, positional_events);
    EXPECT_EQ(shape.map_events, map_events);
}

// Extras holding one extra_keys entry that is nil (a block with nothing mixed into its hash),
// and no other rare field.
BlockStoredExtras only_empty_extra_keys() {
    BlockStoredExtras x;
    x.extra_keys = std::vector<ExtraKeyEntry>{std::nullopt};
    return x;
}

TEST(DecodeExamplesTest, ExampleFileHasAllTen) {
    const auto& examples = test::wire_examples();
    EXPECT_EQ(examples.size(), 10u);
    EXPECT_EQ(test::wire_example("E1").size(), 48u);
    EXPECT_EQ(test::wire_example("E2").size(), 111u);
    EXPECT_EQ(test::wire_example("E3").size(), 50u);
    EXPECT_EQ(test::wire_example("E4").size(), 30u);
    EXPECT_EQ(test::wire_example("E5").size(), 81u);
    EXPECT_EQ(test::wire_example("E6").size(), 194u);
    EXPECT_EQ(test::wire_example("E7").size(), 99u);
    EXPECT_EQ(test::wire_example("E8").size(), 12u);
    EXPECT_EQ(test::wire_example("E9").size(), 187u);
    EXPECT_EQ(test::wire_example("E10").size(), 63u);
}

TEST(DecodeExamplesTest, E1V09BlockStoredIntHashesTwoElementEnvelope) {
    const DecodeResult r = decode_example("E1");
    expect_shape(r.shape, false, 2, 1, 0);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_FALSE(r.batch.data_parallel_rank.has_value());
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto* ev = std::get_if<BlockStored>(&r.batch.events[0]);
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->block_hashes.size(), 1u);
    EXPECT_TRUE(ev->block_hashes[0].is_integer());
    EXPECT_FALSE(ev->block_hashes[0].is_negative());
    EXPECT_EQ(ev->block_hashes[0].to_u64(), kH1);
    EXPECT_EQ(ev->block_hashes[0].to_string(), "1234605616436508552");
    EXPECT_FALSE(ev->parent_block_hash.has_value());
    EXPECT_EQ(ev->token_id_form, TokenIdForm::kPlain);
    EXPECT_EQ(ev->token_ids, kTokens);
    EXPECT_EQ(ev->block_size, 4);
    EXPECT_FALSE(ev->lora_id.has_value());
    EXPECT_EQ(ev->medium, Medium::kUnset);
    EXPECT_FALSE(ev->group_idx.has_value());
    EXPECT_EQ(ev->kv_cache_spec_kind, CacheSpecKind::kUnset);
    EXPECT_FALSE(ev->extras) << "no rare field was sent, so none was allocated";
}

TEST(DecodeExamplesTest, E2MediumEraDigestHashesParentLoraAndMedium) {
    const DecodeResult r = decode_example("E2");
    expect_shape(r.shape, false, 3, 1, 0);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto* ev = std::get_if<BlockStored>(&r.batch.events[0]);
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->block_hashes.size(), 1u);
    const BlockHash& h = ev->block_hashes[0];
    EXPECT_TRUE(h.is_digest());
    ASSERT_EQ(h.digest_size(), 32u);
    EXPECT_EQ(h, counting_digest(0x00, 32));
    EXPECT_EQ(h.to_string(), "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    EXPECT_EQ(h.to_u64(), 0x18191a1b1c1d1e1fULL);
    ASSERT_TRUE(ev->parent_block_hash.has_value());
    EXPECT_TRUE(ev->parent_block_hash->is_digest());
    EXPECT_EQ(*ev->parent_block_hash, counting_digest(0x20, 32));
    EXPECT_EQ(ev->parent_block_hash->to_u64(), 0x38393a3b3c3d3e3fULL);
    EXPECT_EQ(ev->token_id_form, TokenIdForm::kPlain);
    EXPECT_EQ(ev->token_ids, kTokens);
    EXPECT_EQ(ev->block_size, 4);
    EXPECT_EQ(ev->lora_id, 7);
    EXPECT_EQ(ev->medium_name(), "GPU");
    EXPECT_FALSE(ev->group_idx.has_value());
    EXPECT_EQ(ev->kv_cache_spec_kind, CacheSpecKind::kUnset);
    EXPECT_FALSE(ev->extras) << "no rare field was sent, so none was allocated";
}

TEST(DecodeExamplesTest, E3BlockRemovedTwoUint64HashesMediumGroup) {
    const DecodeResult r = decode_example("E3");
    expect_shape(r.shape, false, 3, 1, 0);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 1);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto* ev = std::get_if<BlockRemoved>(&r.batch.events[0]);
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->block_hashes.size(), 2u);
    EXPECT_EQ(ev->block_hashes[0], BlockHash::from_unsigned(kH1));
    EXPECT_EQ(ev->block_hashes[1], BlockHash::from_unsigned(kH2));
    EXPECT_FALSE(ev->block_hashes[1].is_negative());
    EXPECT_EQ(ev->block_hashes[1].to_string(), "17357386176853808775");
    EXPECT_EQ(ev->medium_name(), "GPU");
    EXPECT_EQ(ev->group_idx, 0);
    EXPECT_FALSE(ev->extras);
}

TEST(DecodeExamplesTest, E4AllBlocksClearedWithRank3) {
    const DecodeResult r = decode_example("E4");
    expect_shape(r.shape, false, 3, 1, 0);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 3);
    ASSERT_EQ(r.batch.events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(r.batch.events[0]));
}

TEST(DecodeExamplesTest, E5LastPositionalLayoutAllElevenFields) {
    const DecodeResult r = decode_example("E5");
    expect_shape(r.shape, false, 3, 1, 0);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto* ev = std::get_if<BlockStored>(&r.batch.events[0]);
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->block_hashes.size(), 1u);
    EXPECT_EQ(ev->block_hashes[0], BlockHash::from_unsigned(kH2));
    EXPECT_FALSE(ev->block_hashes[0].is_negative());
    ASSERT_TRUE(ev->parent_block_hash.has_value());
    EXPECT_EQ(*ev->parent_block_hash, BlockHash::from_unsigned(kH1));
    EXPECT_EQ(ev->token_ids, kTokens);
    EXPECT_EQ(ev->token_id_form, TokenIdForm::kPlain);
    EXPECT_EQ(ev->block_size, 4);
    EXPECT_FALSE(ev->lora_id.has_value());
    EXPECT_EQ(ev->medium_name(), "GPU");
    EXPECT_EQ(ev->group_idx, 0);
    EXPECT_EQ(ev->kv_cache_spec_kind_name(), "full_attention");
    EXPECT_TRUE(ev->extras.or_empty() == only_empty_extra_keys());
}

TEST(DecodeExamplesTest, E6MapEventWithNoneOptionalsLeftOut) {
    const DecodeResult r = decode_example("E6");
    expect_shape(r.shape, false, 3, 0, 1);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto* ev = std::get_if<BlockStored>(&r.batch.events[0]);
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->block_hashes.size(), 1u);
    EXPECT_EQ(ev->block_hashes[0], BlockHash::from_unsigned(kH2));
    EXPECT_EQ(ev->block_hashes[0].to_string(), "17357386176853808775");
    EXPECT_FALSE(ev->parent_block_hash.has_value());
    EXPECT_EQ(ev->token_ids, kTokens);
    EXPECT_EQ(ev->token_id_form, TokenIdForm::kPlain);
    EXPECT_EQ(ev->block_size, 4);
    EXPECT_FALSE(ev->lora_id.has_value());
    EXPECT_EQ(ev->medium_name(), "GPU");
    EXPECT_EQ(ev->group_idx, 0);
    EXPECT_EQ(ev->kv_cache_spec_kind_name(), "full_attention");
    EXPECT_TRUE(ev->extras.or_empty() == only_empty_extra_keys());
}

TEST(DecodeExamplesTest, E7MapBlockRemovedAndAllBlocksCleared) {
    const DecodeResult r = decode_example("E7");
    expect_shape(r.shape, false, 3, 0, 2);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
    ASSERT_EQ(r.batch.events.size(), 2u);
    const auto* removed = std::get_if<BlockRemoved>(&r.batch.events[0]);
    ASSERT_NE(removed, nullptr);
    ASSERT_EQ(removed->block_hashes.size(), 1u);
    EXPECT_EQ(removed->block_hashes[0], BlockHash::from_unsigned(kH1));
    EXPECT_EQ(removed->medium_name(), "GPU");
    EXPECT_EQ(removed->group_idx, 0);
    EXPECT_FALSE(removed->extras);
    EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(r.batch.events[1]));
}

TEST(DecodeExamplesTest, E8EmptyEventsAndNilRank) {
    const DecodeResult r = decode_example("E8");
    expect_shape(r.shape, false, 3, 0, 0);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_FALSE(r.batch.data_parallel_rank.has_value());
    EXPECT_TRUE(r.batch.events.empty());
}

TEST(DecodeExamplesTest, E9MapEventLoraExtraKeysStorageLocality) {
    const DecodeResult r = decode_example("E9");
    expect_shape(r.shape, false, 3, 0, 1);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto* ev = std::get_if<BlockStored>(&r.batch.events[0]);
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->block_hashes.size(), 1u);
    EXPECT_EQ(ev->block_hashes[0], BlockHash::from_unsigned(kH1));
    EXPECT_FALSE(ev->parent_block_hash.has_value());
    EXPECT_EQ(ev->token_ids, kTokens);
    EXPECT_EQ(ev->block_size, 4);
    EXPECT_EQ(ev->lora_id, 3);
    EXPECT_EQ(ev->medium_name(), "STORAGE");
    EXPECT_EQ(ev->extras.or_empty().lora_name, "ad");
    ASSERT_TRUE(ev->extras.or_empty().extra_keys.has_value());
    ASSERT_EQ(ev->extras.or_empty().extra_keys->size(), 1u);
    ASSERT_TRUE((*ev->extras.or_empty().extra_keys)[0].has_value());
    const std::vector<Value> expected_key = {Value::string("ad"), Value::string("s1")};
    EXPECT_EQ(*(*ev->extras.or_empty().extra_keys)[0], expected_key);
    EXPECT_EQ(ev->group_idx, 0);
    EXPECT_EQ(ev->kv_cache_spec_kind, CacheSpecKind::kUnset);
    EXPECT_FALSE(ev->extras.or_empty().kv_cache_spec_sliding_window.has_value());
    EXPECT_EQ(ev->extras.or_empty().locality, "LOCAL");
    EXPECT_FALSE(ev->extras.or_empty().ownership.has_value());
    EXPECT_FALSE(ev->extras.or_empty().session_id.has_value());
    EXPECT_FALSE(ev->extras.or_empty().cache_salt.has_value());
    EXPECT_TRUE(ev->extras.or_empty().other_fields.empty());
}

TEST(DecodeExamplesTest, E10SglangSaltedNegativeHashBigramTokens) {
    const DecodeResult r = decode_example("E10");
    expect_shape(r.shape, false, 3, 1, 0);
    EXPECT_EQ(r.batch.ts, kExampleTs);
    EXPECT_EQ(r.batch.data_parallel_rank, 0);
    ASSERT_EQ(r.batch.events.size(), 1u);
    const auto* ev = std::get_if<BlockStored>(&r.batch.events[0]);
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->block_hashes.size(), 1u);
    const BlockHash& h = ev->block_hashes[0];
    EXPECT_TRUE(h.is_integer());
    EXPECT_TRUE(h.is_negative());
    EXPECT_EQ(h.to_u64(), kH2);
    EXPECT_EQ(h, BlockHash::from_unsigned(kH2));  // the same 64 bits as vLLM's uint64 form
    EXPECT_EQ(h.to_string(), "-1089357896855742841");
    EXPECT_FALSE(ev->parent_block_hash.has_value());
    EXPECT_EQ(ev->token_id_form, TokenIdForm::kBigram);
    EXPECT_EQ(ev->token_ids, (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(ev->extras.or_empty().token_id_pair_seconds, (std::vector<std::int64_t>{2, 3}));
    EXPECT_TRUE(ev->extras.or_empty().token_id_strings.empty());
    EXPECT_EQ(ev->block_size, 2);  // the payload sends 02, not the common 4
    EXPECT_FALSE(ev->lora_id.has_value());
    EXPECT_EQ(ev->medium_name(), "GPU");
    EXPECT_FALSE(ev->extras.or_empty().lora_name.has_value());
    EXPECT_FALSE(ev->extras.or_empty().extra_keys.has_value());
    EXPECT_FALSE(ev->group_idx.has_value());
    EXPECT_EQ(ev->extras.or_empty().cache_salt, "t");
    EXPECT_TRUE(ev->extras.or_empty().other_fields.empty());
}

struct ReencodeCase {
    const char* example;
    WireEra era;
};

class ReencodeExampleTest : public ::testing::TestWithParam<ReencodeCase> {};

TEST_P(ReencodeExampleTest, EncoderReproducesPublisherBytes) {
    const ReencodeCase& c = GetParam();
    const std::string original = test::wire_example(c.example);
    const DecodeResult r = test::decode(original);
    ASSERT_TRUE(r.ok());
    const std::string encoded = testing::encode_batch(r.batch, {c.era, false});
    EXPECT_EQ(kvevents::to_hex(encoded), kvevents::to_hex(original));
}

INSTANTIATE_TEST_SUITE_P(Examples,
                         ReencodeExampleTest,
                         ::testing::Values(ReencodeCase{"E1", WireEra::kV0_9},
                                           ReencodeCase{"E2", WireEra::kMedium},
                                           ReencodeCase{"E3", WireEra::kKvCacheSpec},
                                           ReencodeCase{"E4", WireEra::kKvCacheSpec},
                                           ReencodeCase{"E5", WireEra::kKvCacheSpec},
                                           ReencodeCase{"E6", WireEra::kMapEvents},
                                           ReencodeCase{"E7", WireEra::kMapEvents},
                                           ReencodeCase{"E8", WireEra::kKvCacheSpec},
                                           ReencodeCase{"E8", WireEra::kDataParallel},
                                           ReencodeCase{"E8", WireEra::kSglang},
                                           ReencodeCase{"E9", WireEra::kMapEvents},
                                           ReencodeCase{"E10", WireEra::kSglang}),
                         [](const ::testing::TestParamInfo<ReencodeCase>& param_info) {
                             return std::string(param_info.param.example) + "_" +
                                    test::era_name(param_info.param.era);
                         });

TEST(DecodeExamplesTest, ReencodingWithTheWrongEraChangesTheBytes) {
    // Guards the re-encode check itself: an era with a different layout must not match.
    const std::string original = test::wire_example("E5");
    const DecodeResult r = test::decode(original);
    ASSERT_TRUE(r.ok());
    EXPECT_NE(testing::encode_batch(r.batch, {WireEra::kMedium, false}), original);
    EXPECT_NE(testing::encode_batch(r.batch, {WireEra::kMapEvents, false}), original);
    EXPECT_NE(testing::encode_batch(r.batch, {WireEra::kKvCacheSpec, true}), original);
}

}  // namespace
}  // namespace kvevents

// BlockHasher against vectors made with the Python libraries vLLM hashes with
// (tests/data/block_hash/make_vectors.py), and against hand-checked serialisations.

#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/block_hasher.h>
#include <kvevents/hex.h>
#include <kvevents/testing/encoder.h>

namespace kvevents {
namespace {

using kvevents::from_hex;
using kvevents::to_hex;

// "-" is None; any other string field is "x" and the hex of its UTF-8.
std::optional<std::string> text_field(const std::string& field) {
    if (field == "-")
        return std::nullopt;
    if (field.empty() || field[0] != 'x')
        throw std::runtime_error("bad string field in vectors.txt: " + field);
    return from_hex(field.substr(1));
}

struct VectorBlock {
    std::size_t index = 0;
    std::string serialization_hex;
    std::string digest_hex;
    std::uint64_t u64 = 0;
};

struct VectorCase {
    std::string algorithm;
    std::string seed;
    std::size_t block_size = 0;
    RequestKeys keys;
    std::vector<std::int64_t> tokens;
    std::string none_hex;
    std::vector<VectorBlock> blocks;
    std::size_t line = 0;

    std::string where() const {
        return "vectors.txt case at line " + std::to_string(line) + " (" + algorithm + ", seed " +
               seed + ", block size " + std::to_string(block_size) + ")";
    }
};

std::vector<VectorCase> load_vectors() {
    const std::string path = std::string(KVEVENTS_TEST_DATA_DIR) + "/block_hash/vectors.txt";
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("cannot open " + path);
    std::vector<VectorCase> cases;
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::istringstream fields(line);
        std::string tag;
        fields >> tag;
        if (tag == "case") {
            VectorCase c;
            c.line = number;
            std::string lora;
            std::string salt;
            std::size_t mm_count = 0;
            fields >> c.algorithm >> c.seed >> c.block_size >> lora >> salt >> mm_count;
            c.keys.lora_name = text_field(lora);
            c.keys.cache_salt = text_field(salt);
            for (std::size_t i = 0; i < mm_count; ++i) {
                MultimodalInput input;
                std::string id;
                fields >> id >> input.offset >> input.length;
                input.identifier = *text_field(id);
                c.keys.multimodal.push_back(input);
            }
            cases.push_back(std::move(c));
        } else if (tag == "tokens") {
            std::int64_t t = 0;
            while (fields >> t) cases.back().tokens.push_back(t);
        } else if (tag == "none") {
            fields >> cases.back().none_hex;
        } else if (tag == "block") {
            VectorBlock b;
            fields >> b.index >> b.serialization_hex >> b.digest_hex >> b.u64;
            cases.back().blocks.push_back(b);
        }
    }
    return cases;
}

const std::vector<VectorCase>& vectors() {
    static const std::vector<VectorCase> loaded = load_vectors();
    return loaded;
}

TEST(BlockHasherVectors, CoverEveryAlgorithmAndKindOfKey) {
    std::size_t per_algorithm[4] = {};
    std::size_t with_lora = 0;
    std::size_t with_salt = 0;
    std::size_t with_mm = 0;
    std::size_t blocks = 0;
    for (const VectorCase& c : vectors()) {
        const auto algorithm = hash_algorithm_from_name(c.algorithm);
        ASSERT_TRUE(algorithm) << c.where();
        ++per_algorithm[static_cast<int>(*algorithm)];
        with_lora += c.keys.lora_name ? 1u : 0u;
        with_salt += c.keys.cache_salt ? 1u : 0u;
        with_mm += c.keys.multimodal.empty() ? 0u : 1u;
        blocks += c.blocks.size();
    }
    for (const std::size_t n : per_algorithm) EXPECT_GE(n, 50u);
    EXPECT_GE(with_lora, 40u);
    EXPECT_GE(with_salt, 40u);
    EXPECT_GE(with_mm, 40u);
    EXPECT_GE(blocks, 500u);
}

TEST(BlockHasherVectors, EverySerialisationAndDigestMatches) {
    for (const VectorCase& c : vectors()) {
        const BlockHasher hasher(*hash_algorithm_from_name(c.algorithm), c.seed, c.block_size);
        ASSERT_EQ(hasher.none_hash().to_hex(), c.none_hex) << c.where();
        ASSERT_EQ(c.blocks.size(), c.tokens.size() / c.block_size) << c.where();
        std::optional<BlockDigest> parent;
        for (const VectorBlock& b : c.blocks) {
            const std::vector<Value> extra = hasher.block_extra_keys(c.keys, b.index);
            const std::int64_t* tokens = c.tokens.data() + b.index * c.block_size;
            const std::string bytes =
                hasher.serialize_block(parent ? &*parent : nullptr, tokens, c.block_size, &extra);
            ASSERT_EQ(to_hex(bytes), b.serialization_hex) << c.where() << ", block " << b.index;
            const BlockDigest d =
                hasher.hash_block(parent ? &*parent : nullptr, tokens, c.block_size, &extra);
            ASSERT_EQ(d.to_hex(), b.digest_hex) << c.where() << ", block " << b.index;
            ASSERT_EQ(d.to_u64(), b.u64) << c.where() << ", block " << b.index;
            parent = d;
        }
    }
}

TEST(BlockHasherVectors, WholePromptsHashAsTheirBlocks) {
    for (const VectorCase& c : vectors()) {
        const BlockHasher hasher(*hash_algorithm_from_name(c.algorithm), c.seed, c.block_size);
        const std::vector<BlockDigest> digests = hasher.hash_prompt(c.tokens, c.keys);
        const std::vector<std::uint64_t> keys = hasher.prompt_keys(c.tokens, c.keys);
        ASSERT_EQ(digests.size(), c.blocks.size()) << c.where();
        ASSERT_EQ(keys.size(), c.blocks.size()) << c.where();
        for (std::size_t i = 0; i < digests.size(); ++i) {
            EXPECT_EQ(digests[i].to_hex(), c.blocks[i].digest_hex) << c.where() << ", block " << i;
            EXPECT_EQ(keys[i], c.blocks[i].u64) << c.where() << ", block " << i;
        }
    }
}

// The worked examples of pickle and canonical CBOR for the commonest shape.
TEST(BlockHasher, SerialisesTheCommonShapeAsPythonDoes) {
    const std::vector<std::int64_t> tokens{7, 24, 300, 70000};
    const std::string parent_bytes(16, '\x02');
    const BlockDigest parent(reinterpret_cast<const std::uint8_t*>(parent_bytes.data()), 16);
    const BlockHasher pickled(HashAlgorithm::kXxhash, "0", 4);
    EXPECT_EQ(to_hex(pickled.serialize_block(&parent, tokens.data(), 4, nullptr)),
              "800595260000000000000043100202020202020202020202020202020294284b074b184d2c014a70"
              "11010074944e87942e");
    const BlockHasher cbor(HashAlgorithm::kXxhashCbor, "0", 4);
    EXPECT_EQ(to_hex(cbor.serialize_block(&parent, tokens.data(), 4, nullptr)),
              "8350020202020202020202020202020202028407181819012c1a00011170f6");
}

// Integers beyond 32 bits, negative ones, nested tuples, bytes, booleans, None and the empty
// tuple: what a BlockStored's extra_keys can hold, checked against pickle.dumps and cbor2.dumps.
TEST(BlockHasher, SerialisesEveryKindOfExtraKeyAsPythonDoes) {
    const std::vector<std::int64_t> tokens{-7, std::int64_t{1} << 40,
                                           std::numeric_limits<std::int64_t>::min(), 5};
    const std::string parent_bytes(32, '\x01');
    const BlockDigest parent(reinterpret_cast<const std::uint8_t*>(parent_bytes.data()), 32);
    Value image;
    image.kind = Value::Kind::kArray;
    image.items = {Value::string("img"), Value::signed_integer(-3)};
    Value bytes;
    bytes.kind = Value::Kind::kBytes;
    bytes.text = "xx";
    Value yes;
    yes.kind = Value::Kind::kBool;
    yes.boolean = true;
    Value empty_tuple;
    empty_tuple.kind = Value::Kind::kArray;
    const std::vector<Value> extra{image, bytes,   Value::unsigned_integer(std::uint64_t{1} << 63),
                                   yes,   Value{}, empty_tuple};
    const BlockHasher pickled(HashAlgorithm::kSha256, "0", 4);
    EXPECT_EQ(to_hex(pickled.serialize_block(&parent, tokens.data(), 4, &extra)),
              "80059565000000000000004320010101010101010101010101010101010101010101010101010101"
              "010101010194284af9ffffff8a060000000000018a0800000000000000804b057494288c03696d67"
              "944afdffffff869443027878948a09000000000000008000884e29749487942e");
    const BlockHasher cbor(HashAlgorithm::kSha256Cbor, "0", 4);
    EXPECT_EQ(to_hex(cbor.serialize_block(&parent, tokens.data(), 4, &extra)),
              "835820010101010101010101010101010101010101010101010101010101010101010184261b0000"
              "0100000000003b7fffffffffffffff05868263696d67224278781b8000000000000000f5f680");
}

TEST(BlockHasher, NamesItsAlgorithmsAsVllmDoes) {
    for (const char* name : {"sha256", "sha256_cbor", "xxhash", "xxhash_cbor"}) {
        const auto a = hash_algorithm_from_name(name);
        ASSERT_TRUE(a) << name;
        EXPECT_STREQ(to_string(*a), name);
    }
    EXPECT_FALSE(hash_algorithm_from_name("SHA256"));
    EXPECT_FALSE(hash_algorithm_from_name("sha256_msgpack"));
}

TEST(BlockHasher, RejectsWhatItCannotHash) {
    EXPECT_THROW(BlockHasher(HashAlgorithm::kSha256, "0", 0), std::invalid_argument);
    EXPECT_THROW(BlockHasher(HashAlgorithm::kSha256, "0", BlockHasher::kMaxBlockSize + 1),
                 std::invalid_argument);
    const BlockHasher hasher(HashAlgorithm::kSha256, "0", 2);
    const std::vector<std::int64_t> three{1, 2, 3};
    EXPECT_THROW(hasher.hash_block(nullptr, three.data(), 3, nullptr), std::invalid_argument);
    Value real;
    real.kind = Value::Kind::kFloat;
    const std::vector<Value> with_float{real};
    EXPECT_THROW(hasher.hash_block(nullptr, three.data(), 2, &with_float), std::invalid_argument);
    Value map;
    map.kind = Value::Kind::kMap;
    const std::vector<Value> with_map{map};
    EXPECT_THROW(hasher.hash_block(nullptr, three.data(), 2, &with_map), std::invalid_argument);
    // A pickle that would need a second frame.
    const std::vector<Value> huge{Value::string(std::string(70000, 'n'))};
    EXPECT_THROW(hasher.hash_block(nullptr, three.data(), 2, &huge), std::length_error);
    const BlockHasher cbor(HashAlgorithm::kSha256Cbor, "0", 2);
    EXPECT_NO_THROW(cbor.hash_block(nullptr, three.data(), 2, &huge));
}

TEST(BlockHasher, OnlyFullBlocksAreHashed) {
    const BlockHasher hasher(HashAlgorithm::kXxhashCbor, "0", 4);
    EXPECT_TRUE(hasher.hash_prompt(std::vector<std::int64_t>{1, 2, 3}).empty());
    EXPECT_EQ(hasher.hash_prompt(std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7}).size(), 1u);
    EXPECT_EQ(hasher.hash_prompt(std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8}).size(), 2u);
}

TEST(BlockHasher, TheSeedChangesEveryHash) {
    const std::vector<std::int64_t> tokens{1, 2, 3, 4};
    const BlockHasher zero(HashAlgorithm::kSha256Cbor, "0", 4);
    const BlockHasher one(HashAlgorithm::kSha256Cbor, "1", 4);
    EXPECT_NE(zero.none_hash(), one.none_hash());
    EXPECT_NE(zero.hash_prompt(tokens)[0], one.hash_prompt(tokens)[0]);
}

TEST(BlockHasher, ExtraKeysFollowVllmsOrder) {
    const BlockHasher hasher(HashAlgorithm::kSha256Cbor, "0", 4);
    RequestKeys keys;
    keys.lora_name = "adapter";
    keys.cache_salt = "salt";
    keys.multimodal = {{"img-a", 2, 3}, {"img-b", 5, 6}};
    // Block 0 covers tokens 0-3: the LoRA name, img-a (from offset 2), then the salt.
    std::vector<Value> b0 = hasher.block_extra_keys(keys, 0);
    ASSERT_EQ(b0.size(), 3u);
    EXPECT_EQ(b0[0], Value::string("adapter"));
    EXPECT_EQ(b0[1].items.at(0), Value::string("img-a"));
    EXPECT_EQ(b0[1].items.at(1), Value::signed_integer(2));
    EXPECT_EQ(b0[2], Value::string("salt"));
    // Block 1 covers 4-7: img-a ends at 5 (offset -2 from the block), img-b starts at 5.
    std::vector<Value> b1 = hasher.block_extra_keys(keys, 1);
    ASSERT_EQ(b1.size(), 3u);
    EXPECT_EQ(b1[1].items.at(1), Value::signed_integer(-2));
    EXPECT_EQ(b1[2].items.at(0), Value::string("img-b"));
    EXPECT_EQ(b1[2].items.at(1), Value::signed_integer(1));
    // Block 3 covers 12-15: past every input, and the salt is only on block 0.
    EXPECT_EQ(hasher.block_extra_keys(keys, 3).size(), 1u);
    // An empty salt is no salt; no keys at all is None.
    keys = RequestKeys{};
    keys.cache_salt = "";
    EXPECT_TRUE(hasher.block_extra_keys(keys, 0).empty());
}

TEST(BlockDigest, ItsU64IsTheLastEightBytesBigEndian) {
    std::uint8_t bytes[16];
    for (int i = 0; i < 16; ++i) bytes[i] = static_cast<std::uint8_t>(i + 1);
    const BlockDigest d(bytes, 16);
    EXPECT_EQ(d.to_u64(), 0x090a0b0c0d0e0f10ULL);
    EXPECT_EQ(d.to_block_hash().to_u64(), d.to_u64());
    EXPECT_EQ(d.to_hex(), "0102030405060708090a0b0c0d0e0f10");
    EXPECT_THROW(BlockDigest(bytes, 0), std::invalid_argument);
    EXPECT_THROW(BlockDigest(bytes, 33), std::invalid_argument);
}

}  // namespace
}  // namespace kvevents

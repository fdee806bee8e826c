#include "hash_command.h"

#include <charconv>
#include <cstdint>
#include <iostream>

#include <kvevents/block_hasher.h>

#include "hashing_flags.h"
#include "json_writer.h"

namespace kvevents::cli {
namespace {

constexpr const char* kUsage =
    "usage: kvevents-cli hash --hash-seed S --tokens ID,ID,... [options]\n"
    "  Prints, for each full block of the prompt, the hash vLLM gives it:\n"
    "  {\"block\": i, \"hash\": \"<hex digest>\", \"hash_u64\": n}; hash_u64 is what vLLM "
    "publishes\n"
    "  by default. A partial last block has no hash.\n"
    "  --tokens IDS          the prompt's token ids, comma-separated\n"
    "  --lora-name L         the request's LoRA adapter name\n"
    "  --cache-salt C        the request's cache_salt\n";

std::vector<std::int64_t> parse_tokens(const std::string& text, const ArgCursor& cursor) {
    std::vector<std::int64_t> tokens;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        std::int64_t id = 0;
        const char* first = text.data() + start;
        const char* last = text.data() + comma;
        const auto [end, ec] = std::from_chars(first, last, id);
        if (first == last || ec != std::errc() || end != last || id < 0)
            cursor.fail("--tokens needs comma-separated non-negative token ids, got '" +
                        std::string(first, last) + "' at item " +
                        std::to_string(tokens.size() + 1));
        tokens.push_back(id);
        start = comma + 1;
    }
    return tokens;
}

}  // namespace

int run_hash(const std::vector<std::string>& args) {
    ArgCursor cursor("hash", args);
    HashingFlags hashing;
    RequestKeys keys;
    std::optional<std::vector<std::int64_t>> tokens;
    try {
        while (!cursor.done()) {
            const std::string flag = cursor.next();
            if (take_hashing_flag(cursor, flag, hashing))
                continue;
            if (flag == "--tokens") {
                tokens = parse_tokens(cursor.value_of(flag), cursor);
            } else if (flag == "--lora-name") {
                keys.lora_name = cursor.value_of(flag);
            } else if (flag == "--cache-salt") {
                keys.cache_salt = cursor.value_of(flag);
            } else if (flag == "-h" || flag == "--help") {
                std::cout << kUsage << kHashingFlagsUsage;
                return 0;
            } else {
                cursor.fail("unknown option '" + flag + "'");
            }
        }
        if (!tokens)
            cursor.fail("--tokens is required");
        const BlockHasher hasher = make_hasher(hashing, cursor);
        const std::vector<BlockDigest> digests = hasher.hash_prompt(*tokens, keys);
        JsonWriter json;
        for (std::size_t i = 0; i < digests.size(); ++i) {
            json.clear();
            json.begin_object();
            json.key("block");
            json.number(static_cast<std::uint64_t>(i));
            json.key("hash");
            json.string(digests[i].to_hex());
            json.key("hash_u64");
            json.number(digests[i].to_u64());
            json.end_object();
            std::cout << json.str() << '\n';
        }
        return 0;
    } catch (const UsageError& e) {
        std::cerr << e.what() << '\n' << kUsage << kHashingFlagsUsage;
        return 2;
    }
}

}  // namespace kvevents::cli

#include "hash_command.h"

#include <charconv>
#include <cstdint>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include <kvevents/block_hasher.h>

#include "hashing_flags.h"
#include "json_writer.h"
#include "output_flags.h"

namespace kvevents::cli {
namespace {

struct HashConfig {
    HashingFlags hashing;
    RequestKeys keys;
    std::vector<std::int64_t> tokens;
    HashStyle hash_style = HashStyle::kNumber;
};

std::vector<std::int64_t> parse_tokens(const std::string& text) {
    std::vector<std::int64_t> tokens;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        std::int64_t id = 0;
        const char* first = text.data() + start;
        const char* last = text.data() + comma;
        const auto [end, ec] = std::from_chars(first, last, id);
        if (first == last || ec != std::errc() || end != last || id < 0)
            throw UsageError("--tokens needs comma-separated non-negative token ids, got '" +
                             std::string(first, last) + "' at item " +
                             std::to_string(tokens.size() + 1));
        tokens.push_back(id);
        start = comma + 1;
    }
    return tokens;
}

int run_hash(const CLI::App& command, const HashConfig& config) {
    reject_leftovers(command);
    const BlockHasher hasher = make_hasher(config.hashing);
    const std::vector<BlockDigest> digests = hasher.hash_prompt(config.tokens, config.keys);
    JsonWriter json;
    for (std::size_t i = 0; i < digests.size(); ++i) {
        json.clear();
        json.begin_object();
        json.key("block");
        json.number(static_cast<std::uint64_t>(i));
        json.key("hash");
        json.string(digests[i].to_hex());
        json.key("hash_u64");
        write_block_hash(json, BlockHash::from_unsigned(digests[i].to_u64()), config.hash_style);
        json.end_object();
        std::cout << json.str() << '\n';
    }
    return 0;
}

}  // namespace

Command add_hash_command(CLI::App& app) {
    auto config = std::make_shared<HashConfig>();
    CLI::App* command = add_command(
        app, "hash", "print the block hashes vLLM gives a prompt's tokens",
        "Prints, for each full block of the prompt, the hash vLLM gives it:\n"
        "{\"block\": i, \"hash\": \"<hex digest>\", \"hash_u64\": n}; hash_u64 is what vLLM "
        "publishes\n"
        "by default. A partial last block has no hash.");
    command
        ->add_option_function<std::string>(
            "--tokens", [config](const std::string& text) { config->tokens = parse_tokens(text); },
            "the prompt's token ids, comma-separated")
        ->type_name("IDS")
        ->required();
    command
        ->add_option_function<std::string>(
            "--lora-name", [config](const std::string& name) { config->keys.lora_name = name; },
            "the request's LoRA adapter name")
        ->type_name("L");
    command
        ->add_option_function<std::string>(
            "--cache-salt", [config](const std::string& salt) { config->keys.cache_salt = salt; },
            "the request's cache_salt")
        ->type_name("C");
    add_hashing_flags(*command, config->hashing);
    add_hash_style_flag(*command, config->hash_style)
        ->description(
            "hash_u64 as a decimal JSON string, for readers that round numbers above\n"
            "2^53 (jq 1.6, JavaScript's JSON.parse)");
    return Command{command, [command, config] { return run_hash(*command, *config); }};
}

}  // namespace kvevents::cli

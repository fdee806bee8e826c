#include "decode_command.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include <kvevents/decode.h>
#include <kvevents/hex.h>

#include "event_json.h"
#include "output_flags.h"
#include "utf8.h"

namespace kvevents::cli {
namespace {

struct DecodeConfig {
    bool raw = false;
    std::string path = "-";
    HashStyle hash_style = HashStyle::kNumber;
};

// Prints a payload's events; reports problems on stderr. Returns false if anything failed.
bool print_payload(const std::string& payload,
                   const std::string& where,
                   HashStyle hash_style,
                   JsonWriter& json) {
    const DecodeResult result = decode_batch(payload.data(), payload.size());
    const BatchOrigin origin;
    for (std::size_t i = 0; i < result.batch.events.size(); ++i) {
        json.clear();
        write_event_json(json, origin, result.batch, i, hash_style);
        std::cout << json.str() << '\n';
    }
    if (result.unknown_events > 0) {
        std::cerr << where << ": skipped " << result.unknown_events << " event(s) of unknown type";
        for (const std::string& tag : result.unknown_tags) std::cerr << " " << tag;
        std::cerr << '\n';
    }
    for (const DecodeError& e : result.event_errors) {
        std::cerr << where << ": " << e.message() << '\n';
    }
    if (result.fatal) {
        std::cerr << where << ": " << result.fatal->message() << '\n';
    }
    return result.ok();
}

// Hex lines: returns 0 when every payload decoded, 1 when any failed. Input that is not text is
// a usage error (a binary capture needs --raw), so its bytes are never echoed to the terminal.
int decode_hex_lines(std::istream& in, const DecodeConfig& config) {
    const std::string name = config.path == "-" ? "standard input" : config.path;
    JsonWriter json;
    bool all_ok = true;
    std::string line;
    for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
        if (!is_text_line(line)) {
            throw UsageError(name + " looks binary (NUL or non-text bytes on line " +
                             std::to_string(line_no) + "); pass --raw for a binary payload");
        }
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#')
            continue;
        const std::string where = "line " + std::to_string(line_no);
        // "0x..." as Python's hex() and many tools print it.
        std::string_view hex = std::string_view(line).substr(first);
        if (hex.rfind("0x", 0) == 0 || hex.rfind("0X", 0) == 0)
            hex.remove_prefix(2);
        if (std::any_of(hex.begin(), hex.end(),
                        [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
            std::cerr << where << ": not hex: a character outside ASCII\n";
            all_ok = false;
            continue;
        }
        std::string payload;
        try {
            payload = kvevents::from_hex(hex);
        } catch (const std::invalid_argument& e) {
            std::cerr << where << ": not hex: " << e.what() << '\n';
            all_ok = false;
            continue;
        }
        all_ok = print_payload(payload, where, config.hash_style, json) && all_ok;
    }
    return all_ok ? 0 : 1;
}

int run_decode(const CLI::App& command, const DecodeConfig& config) {
    const std::vector<std::string> leftovers = command.remaining();
    if (!leftovers.empty() && leftovers.front()[0] != '-')
        throw UsageError("more than one input file ('" + config.path + "', '" + leftovers.front() +
                         "')");
    reject_leftovers(command);
    std::ifstream file;
    if (config.path != "-") {
        file.open(config.path, std::ios::binary);
        if (!file)
            throw UsageError("cannot open '" + config.path + "'");
    }
    std::istream& in = config.path == "-" ? std::cin : file;
    if (!config.raw)
        return decode_hex_lines(in, config);
    const std::string payload((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    JsonWriter json;
    return print_payload(payload, config.path, config.hash_style, json) ? 0 : 1;
}

}  // namespace

Command add_decode_command(CLI::App& app) {
    auto config = std::make_shared<DecodeConfig>();
    CLI::App* command = add_command(
        app, "decode", "decode msgpack payloads (hex lines or --raw) into JSON lines",
        "Prints one JSON line per event. Reads FILE (or standard input):\n"
        "one hex payload per line, 0x prefix optional; blank lines and lines starting with #\n"
        "are skipped. A binary file needs --raw.");
    command->add_option("FILE", config->path, "input file; - (the default) is standard input");
    command->add_flag("--raw", config->raw, "FILE holds one binary payload instead of hex lines");
    add_hash_style_flag(*command, config->hash_style);
    return Command{command, [command, config] { return run_decode(*command, *config); }};
}

}  // namespace kvevents::cli

#include "decode_command.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include <kvevents/decode.h>
#include <kvevents/hex.h>

#include "event_json.h"

namespace kvevents::cli {
namespace {

constexpr const char* kUsage =
    "usage: kvevents-cli decode [--raw] [FILE|-]\n"
    "  Reads msgpack payloads (one hex payload per line, 0x prefix optional; blank lines and\n"
    "  lines starting with # are skipped) from FILE or standard input and prints one JSON line\n"
    "  per event.\n"
    "  --raw   FILE holds one binary payload instead of hex lines\n";

// Prints a payload's events; reports problems on stderr. Returns false if anything failed.
bool print_payload(const std::string& payload, const std::string& where, JsonWriter& json) {
    const DecodeResult result = decode_batch(payload.data(), payload.size());
    const BatchOrigin origin;
    for (std::size_t i = 0; i < result.batch.events.size(); ++i) {
        json.clear();
        write_event_json(json, origin, result.batch, i);
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

}  // namespace

int run_decode(const std::vector<std::string>& args) {
    bool raw = false;
    std::string path = "-";
    bool have_path = false;
    for (const std::string& arg : args) {
        if (arg == "--raw") {
            raw = true;
        } else if (arg == "-h" || arg == "--help") {
            std::cout << kUsage;
            return 0;
        } else if (arg.size() > 1 && arg[0] == '-') {
            std::cerr << "kvevents-cli decode: unknown option '" << arg << "'\n" << kUsage;
            return 2;
        } else if (have_path) {
            std::cerr << "kvevents-cli decode: more than one input file ('" << path << "', '" << arg
                      << "')\n";
            return 2;
        } else {
            path = arg;
            have_path = true;
        }
    }
    std::ifstream file;
    if (path != "-") {
        file.open(path, std::ios::binary);
        if (!file) {
            std::cerr << "kvevents-cli decode: cannot open '" << path << "'\n";
            return 2;
        }
    }
    std::istream& in = path == "-" ? std::cin : file;
    JsonWriter json;
    if (raw) {
        const std::string payload((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
        return print_payload(payload, path, json) ? 0 : 1;
    }
    bool all_ok = true;
    std::string line;
    for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#')
            continue;
        const std::string where = "line " + std::to_string(line_no);
        std::string payload;
        // "0x..." as Python's hex() and many tools print it.
        std::string_view hex = std::string_view(line).substr(first);
        if (hex.rfind("0x", 0) == 0 || hex.rfind("0X", 0) == 0)
            hex.remove_prefix(2);
        try {
            payload = kvevents::from_hex(hex);
        } catch (const std::invalid_argument& e) {
            std::cerr << where << ": not hex: " << e.what() << '\n';
            all_ok = false;
            continue;
        }
        all_ok = print_payload(payload, where, json) && all_ok;
    }
    return all_ok ? 0 : 1;
}

}  // namespace kvevents::cli

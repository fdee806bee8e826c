// kvevents-cli: decode captured KV-cache event payloads and follow live publishers.
#include <iostream>
#include <string>
#include <vector>

#include "decode_command.h"
#include "demo_command.h"
#include "hash_command.h"
#include "subscribe_command.h"

namespace {

constexpr const char* kUsage =
    "usage: kvevents-cli <command> [options]\n"
    "commands:\n"
    "  subscribe  follow live publishers and print their events\n"
    "  demo       run a mock vLLM publisher with faults and follow it (a self-check)\n"
    "  decode     decode msgpack payloads (hex lines or --raw) into JSON lines\n"
    "  hash       print the block hashes vLLM gives a prompt's tokens\n"
    "Run 'kvevents-cli <command> --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << kUsage;
        return 2;
    }
    const std::string command = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    if (command == "decode") {
        return kvevents::cli::run_decode(args);
    }
    if (command == "subscribe") {
        return kvevents::cli::run_subscribe(args);
    }
    if (command == "hash") {
        return kvevents::cli::run_hash(args);
    }
    if (command == "demo") {
        return kvevents::cli::run_demo(args);
    }
    if (command == "-h" || command == "--help") {
        std::cout << kUsage;
        return 0;
    }
    std::cerr << "kvevents-cli: unknown command '" << command << "'\n" << kUsage;
    return 2;
}

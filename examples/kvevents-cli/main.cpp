// kvevents-cli: decode captured KV-cache event payloads and follow live publishers.
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli_args.h"
#include "decode_command.h"
#include "demo_command.h"
#include "hash_command.h"
#include "subscribe_command.h"

namespace {

// "kvevents-cli" or "kvevents-cli COMMAND": how error lines begin.
std::string error_prefix(CLI::App& app) {
    const std::vector<CLI::App*> chosen = app.get_subcommands();
    return chosen.empty() ? app.get_name() : app.get_name() + " " + chosen.front()->get_name();
}

int run(CLI::App& app, const std::vector<kvevents::cli::Command>& commands, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help or --version: printed on stdout
    }
    const std::vector<std::string> leftovers = app.remaining();
    if (!leftovers.empty()) {
        const std::string& first = leftovers.front();
        throw kvevents::cli::UsageError(
            (first[0] == '-' ? "unknown option '" : "unknown command '") +
            first.substr(0, first.find('=')) + "' (see kvevents-cli --help)");
    }
    for (const kvevents::cli::Command& command : commands) {
        if (command.app->parsed())
            return command.run();
    }
    throw kvevents::cli::UsageError(
        "give a command: subscribe, demo, decode or hash (see kvevents-cli --help)");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("Decodes captured KV-cache event payloads and follows live publishers.",
                 "kvevents-cli");
    app.footer("Run 'kvevents-cli COMMAND --help' for a command's options.");
    app.set_version_flag("--version", std::string("kvevents-cli ") + KVEVENTS_VERSION);
    app.require_subcommand(0, 1);
    // Unknown arguments are reported as usage errors in our words (see run() and add_command()).
    app.allow_extras();
    // A flag given twice: the last one counts.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    std::vector<kvevents::cli::Command> commands;
    for (auto add : {kvevents::cli::add_subscribe_command, kvevents::cli::add_demo_command,
                     kvevents::cli::add_decode_command, kvevents::cli::add_hash_command}) {
        commands.push_back(add(app));
    }
    try {
        return run(app, commands, argc, argv);
    } catch (const CLI::ParseError& e) {
        std::cerr << error_prefix(app) << ": " << e.what() << '\n';
    } catch (const kvevents::cli::UsageError& e) {
        std::cerr << error_prefix(app) << ": " << e.what() << '\n';
    }
    return 2;  // every usage error
}

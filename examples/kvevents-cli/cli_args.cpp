#include "cli_args.h"

#include <charconv>
#include <cmath>

#include <CLI/CLI.hpp>

namespace kvevents::cli {

CLI::App* add_command(CLI::App& app,
                      const std::string& name,
                      const std::string& summary,
                      const std::string& details) {
    CLI::App* command = app.add_subcommand(name, summary);
    command->footer(details);
    command->allow_extras();
    return command;
}

std::uint64_t whole_number_of(const std::string& flag,
                              const std::string& text,
                              std::uint64_t min,
                              std::uint64_t max) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
        throw UsageError(flag + " needs a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", got '" + text + "'");
    }
    return value;
}

std::chrono::milliseconds seconds_of(const std::string& flag, const std::string& text) {
    double seconds = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) ||
        seconds <= 0 || seconds > 1e7) {
        throw UsageError(flag + " needs a positive number of seconds, got '" + text + "'");
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

CLI::Option* add_whole_number(CLI::App& command,
                              const std::string& flag,
                              std::uint64_t min,
                              std::uint64_t max,
                              std::function<void(std::uint64_t)> set,
                              const std::string& description) {
    return command
        .add_option_function<std::string>(
            flag,
            [flag, min, max, set = std::move(set)](const std::string& text) {
                set(whole_number_of(flag, text, min, max));
            },
            description)
        ->type_name("N");
}

CLI::Option* add_seconds(CLI::App& command,
                         const std::string& flag,
                         std::function<void(std::chrono::milliseconds)> set,
                         const std::string& description) {
    return command
        .add_option_function<std::string>(
            flag,
            [flag, set = std::move(set)](const std::string& text) { set(seconds_of(flag, text)); },
            description)
        ->type_name("SECONDS");
}

CLI::Option* add_log_level(CLI::App& command,
                           std::string& level,
                           const std::string& default_level) {
    level = default_level;
    return command
        .add_option_function<std::string>(
            "--log-level",
            [&level](const std::string& text) {
                static const char* const kLevels[] = {"trace", "debug",    "info", "warn",
                                                      "error", "critical", "off"};
                bool known = false;
                for (const char* l : kLevels) known |= text == l;
                if (!known) {
                    throw UsageError(
                        "--log-level must be one of trace, debug, info, warn, error, critical, "
                        "off; got '" +
                        text + "'");
                }
                level = text;
            },
            "library log level on stderr: trace, debug, info, warn, error, critical or off "
            "(default " +
                default_level + ")")
        ->type_name("LEVEL");
}

void reject_leftovers(const CLI::App& command) {
    const std::vector<std::string> leftovers = command.remaining();
    if (leftovers.empty())
        return;
    const std::string& first = leftovers.front();
    const std::string see = " (see kvevents-cli " + command.get_name() + " --help)";
    if (first.size() > 1 && first[0] == '-')
        throw UsageError("unknown option '" + first.substr(0, first.find('=')) + "'" + see);
    throw UsageError("unexpected argument '" + first + "'" + see);
}

}  // namespace kvevents::cli

#pragma once

// What every command's flag parsing shares: the usage error, number and duration values that name
// their flag when they are wrong, and the command table main() dispatches on. Flags are parsed
// with CLI11.

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace kvevents::cli {

/// A command-line mistake. main() prints "kvevents-cli COMMAND: " and the message as one line,
/// and exits with status 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A command added to the top-level app: run() is called after parsing, when it was chosen.
struct Command {
    CLI::App* app;
    std::function<int()> run;
};

/// A command of `app`: `summary` in the list of commands, `details` at the end of its --help.
/// Arguments that none of its options take are left for reject_leftovers().
CLI::App* add_command(CLI::App& app,
                      const std::string& name,
                      const std::string& summary,
                      const std::string& details);

/// `text` as a whole number from min to max; a UsageError names `flag` otherwise.
std::uint64_t whole_number_of(const std::string& flag,
                              const std::string& text,
                              std::uint64_t min,
                              std::uint64_t max);

/// `text` as a positive number of seconds, fractions allowed; a UsageError names `flag` otherwise.
std::chrono::milliseconds seconds_of(const std::string& flag, const std::string& text);

/// An option taking a whole number from min to max, handed to `set`.
CLI::Option* add_whole_number(CLI::App& command,
                              const std::string& flag,
                              std::uint64_t min,
                              std::uint64_t max,
                              std::function<void(std::uint64_t)> set,
                              const std::string& description);

/// An option taking a positive number of seconds, handed to `set`.
CLI::Option* add_seconds(CLI::App& command,
                         const std::string& flag,
                         std::function<void(std::chrono::milliseconds)> set,
                         const std::string& description);

/// --log-level: one of spdlog's level names, stored in `level`.
CLI::Option* add_log_level(CLI::App& command, std::string& level, const std::string& default_level);

/// Throws a UsageError naming the first argument no option of `command` took.
void reject_leftovers(const CLI::App& command);

}  // namespace kvevents::cli

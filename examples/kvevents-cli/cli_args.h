#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvevents::cli {

/// A command-line mistake; its message is printed as one line and the exit status is 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Walks a command's arguments, handing out flag values with errors that name the flag.
class ArgCursor {
public:
    ArgCursor(std::string command, const std::vector<std::string>& args)
        : command_(std::move(command)), args_(args) {}

    bool done() const { return pos_ >= args_.size(); }
    const std::string& next() { return args_[pos_++]; }
    /// The value after `flag`; throws UsageError when there is none.
    std::string value_of(const std::string& flag);
    std::uint64_t unsigned_of(const std::string& flag, std::uint64_t min, std::uint64_t max);
    /// A positive number of seconds, fractions allowed.
    std::chrono::milliseconds seconds_of(const std::string& flag);

    [[noreturn]] void fail(const std::string& message) const;

private:
    std::string command_;
    const std::vector<std::string>& args_;
    std::size_t pos_ = 0;
};

}  // namespace kvevents::cli

#pragma once

// Runs a program with its stdout on a pipe (read line by line with a deadline) and its stderr in
// a file, so tests can drive the CLI as a user would, signals included.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace kvevents::test {

class Subprocess {
public:
    explicit Subprocess(const std::vector<std::string>& argv);
    ~Subprocess();
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;

    /// The next stdout line, or nullopt at end of output or when the deadline passes.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    void signal(int signo);
    /// Waits for the exit and returns the exit status (128 + signal if killed by one).
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    std::string stderr_text() const;

private:
    int pid_ = -1;
    int stdout_fd_ = -1;
    std::string stderr_path_;
    std::string buffer_;
    std::optional<int> status_;
};

}  // namespace kvevents::test

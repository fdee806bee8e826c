#include "subprocess.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kvevents::test {

Subprocess::Subprocess(const std::vector<std::string>& argv) {
    char path[] = "/tmp/kvevents-stderr-XXXXXX";
    const int err_fd = mkstemp(path);
    if (err_fd < 0)
        throw std::runtime_error("mkstemp failed");
    stderr_path_ = path;
    int out[2];
    if (pipe(out) != 0)
        throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0)
        throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(err_fd);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    close(err_fd);
    stdout_fd_ = out[0];
}

Subprocess::~Subprocess() {
    if (!status_) {
        kill(pid_, SIGKILL);
        int status = 0;
        waitpid(pid_, &status, 0);
    }
    close(stdout_fd_);
    unlink(stderr_path_.c_str());
}

std::optional<std::string> Subprocess::read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const auto newline = buffer_.find('\n');
        if (newline != std::string::npos) {
            std::string line = buffer_.substr(0, newline);
            buffer_.erase(0, newline + 1);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return std::nullopt;
        pollfd p{stdout_fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char chunk[4096];
        const ssize_t n = read(stdout_fd_, chunk, sizeof chunk);
        if (n <= 0)
            return std::nullopt;
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

void Subprocess::signal(int signo) {
    kill(pid_, signo);
}

int Subprocess::wait(std::chrono::milliseconds timeout) {
    if (status_)
        return *status_;
    // The child's stdout reaches end-of-file when it exits: wait for that, with the deadline.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool eof = false;
    while (!eof) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p{stdout_fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char chunk[4096];
        const ssize_t n = read(stdout_fd_, chunk, sizeof chunk);
        if (n <= 0) {
            eof = true;
        } else {
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    if (!eof)
        kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return *status_;
}

std::string Subprocess::stderr_text() const {
    std::ifstream in(stderr_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace kvevents::test

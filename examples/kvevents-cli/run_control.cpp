#include "run_control.h"

#include <csignal>
#include <ctime>

#include <pthread.h>

namespace kvevents::cli {
namespace {

sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return set;
}

}  // namespace

void block_stop_signals() {
    const sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::optional<const char*> wait_for_stop(std::optional<std::chrono::milliseconds> duration,
                                         std::optional<std::chrono::milliseconds> interval,
                                         const WaitHooks& hooks) {
    using Clock = std::chrono::steady_clock;
    const sigset_t set = stop_signals();
    const auto start = Clock::now();
    auto next_report = interval ? start + *interval : Clock::time_point::max();
    auto next_second = start + std::chrono::seconds(1);
    while (true) {
        const auto now = Clock::now();
        if (hooks.should_stop && hooks.should_stop())
            return std::nullopt;
        if (duration && now - start >= *duration)
            return std::nullopt;
        if (now >= next_report) {
            if (hooks.every_interval)
                hooks.every_interval();
            next_report += *interval;
        }
        if (now >= next_second) {
            if (hooks.every_second)
                hooks.every_second();
            next_second += std::chrono::seconds(1);
        }
        const timespec slice{0, 50 * 1000 * 1000};
        const int sig = sigtimedwait(&set, nullptr, &slice);
        if (sig == SIGINT)
            return "SIGINT";
        if (sig == SIGTERM)
            return "SIGTERM";
        if (sig == SIGHUP && hooks.on_hangup)
            hooks.on_hangup();
    }
}

}  // namespace kvevents::cli

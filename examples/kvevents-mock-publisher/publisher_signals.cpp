#include "publisher_signals.h"

#include <algorithm>
#include <csignal>
#include <ctime>

#include <pthread.h>

namespace kvevents::cli {
namespace {

sigset_t publisher_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (const int signo : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&set, signo);
    return set;
}

}  // namespace

void block_publisher_signals() {
    const sigset_t set = publisher_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    // A test that stopped reading stdout must not kill the engine it still subscribes to.
    std::signal(SIGPIPE, SIG_IGN);
}

ReceivedSignal wait_for_signal(std::chrono::steady_clock::time_point deadline) {
    const sigset_t set = publisher_signals();
    const auto left = std::max(std::chrono::steady_clock::duration::zero(),
                               deadline - std::chrono::steady_clock::now());
    // sigtimedwait is fine-grained enough to pace thousands of batches a second; a deadline
    // far away (none at all) is waited for in slices the timespec can hold.
    const auto capped = std::min<std::chrono::steady_clock::duration>(left, std::chrono::hours(1));
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(capped);
    const timespec timeout{
        static_cast<std::time_t>(seconds.count()),
        static_cast<long>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(capped - seconds).count())};
    switch (sigtimedwait(&set, nullptr, &timeout)) {
        case SIGINT:
            return {SignalRequest::kStop, "SIGINT"};
        case SIGTERM:
            return {SignalRequest::kStop, "SIGTERM"};
        case SIGHUP:
            return {SignalRequest::kRestart, "SIGHUP"};
        case SIGUSR1:
            return {SignalRequest::kRestart, "SIGUSR1"};
        default:
            return {};
    }
}

}  // namespace kvevents::cli

#pragma once

#include <chrono>

namespace kvevents::cli {

/// What a signal asks of the publisher.
enum class SignalRequest {
    kNone,
    kStop,     // SIGINT, SIGTERM
    kRestart,  // SIGHUP, SIGUSR1
};

struct ReceivedSignal {
    SignalRequest request = SignalRequest::kNone;
    const char* name = "";
};

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread and the threads it starts
/// afterwards, so that wait_for_signal() takes them synchronously, and ignores SIGPIPE. Call
/// before any socket exists.
void block_publisher_signals();

/// Waits until one of those signals arrives or `deadline` passes (returns at once when it has
/// passed, taking a signal already pending).
ReceivedSignal wait_for_signal(std::chrono::steady_clock::time_point deadline);

}  // namespace kvevents::cli

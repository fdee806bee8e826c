#pragma once

#include <chrono>
#include <functional>
#include <optional>

namespace kvevents::cli {

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and every thread it starts afterwards,
/// so that wait_for_stop() can take them synchronously. Call before starting any client or fleet.
void block_stop_signals();

/// What wait_for_stop() calls while it waits; any may be empty.
struct WaitHooks {
    std::function<bool()> should_stop;     // checked every 50 ms; true ends the wait
    std::function<void()> every_interval;  // each `interval`
    std::function<void()> every_second;
    std::function<void()> on_hangup;  // SIGHUP (ignored when empty)
};

/// Waits until a stop signal arrives, should_stop() turns true, or the duration passes. Returns
/// the signal name, or nullopt when it ended for another reason.
std::optional<const char*> wait_for_stop(std::optional<std::chrono::milliseconds> duration,
                                         std::optional<std::chrono::milliseconds> interval,
                                         const WaitHooks& hooks);

}  // namespace kvevents::cli

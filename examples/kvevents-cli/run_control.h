#pragma once

#include <chrono>
#include <functional>
#include <optional>

namespace kvevents::cli {

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards, so
/// that wait_for_stop() can take them synchronously. Call before starting any client.
void block_stop_signals();

/// Waits until a stop signal arrives, `should_stop()` turns true (checked every 50 ms), or the
/// duration passes; calls `every_interval()` each `interval` meanwhile. Returns the signal name,
/// or nullopt when it ended for another reason.
std::optional<const char*> wait_for_stop(std::optional<std::chrono::milliseconds> duration,
                                         std::optional<std::chrono::milliseconds> interval,
                                         const std::function<bool()>& should_stop,
                                         const std::function<void()>& every_interval);

}  // namespace kvevents::cli

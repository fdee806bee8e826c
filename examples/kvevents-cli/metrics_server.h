#pragma once

// `subscribe --metrics-port`: /metrics over HTTP for every publisher the fleet follows, with
// kvevents::prometheus. Built only when prometheus-cpp is found.

#include <memory>
#include <string>

#include <kvevents/event_handler.h>
#include <kvevents/fleet.h>

namespace kvevents::cli {

class MetricsServer {
public:
    /// Serves on address:port (port 0: any free one). Throws std::runtime_error naming the
    /// address when it cannot listen.
    MetricsServer(const std::string& address, int port);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    /// The handler to give the fleet: records each batch's delivery lag, then calls `inner`.
    EventHandler& observing(EventHandler& inner);
    /// Reports the fleet's publishers until untrack().
    void track(const Fleet& fleet);
    void untrack(const Fleet& fleet);
    int port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvevents::cli

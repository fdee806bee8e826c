#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <variant>

#include <kvevents/testing/mock_publisher.h>

namespace kvevents::cli {

/// Everything kvevents-mock-publisher was asked to do.
struct PublisherSettings {
    /// Sockets, topic, rank, wire era, replay envelope and buffer, as MockPublisher takes them.
    testing::MockPublisherOptions publisher;
    std::string era_name;  // the --era value, reported in the ready line
    /// Batches per second; 0: as fast as possible.
    double rate = 10;
    /// Events in each batch; nullopt: 1 to 3, as a busy engine varies.
    std::optional<std::size_t> events_per_batch;
    /// Stop publishing after this many batches (replay is still served).
    std::optional<std::uint64_t> count;
    /// Exit after this long.
    std::optional<std::chrono::milliseconds> duration;
    /// Seeds the workload and the random drops.
    std::uint64_t seed = 1;
    /// Faults: live batches kept for replay but not sent (every Nth; at random).
    std::uint64_t drop_every = 0;
    double drop_rate = 0;
    /// The replay socket reads requests and never answers.
    bool replay_silent = false;
    /// Restart after this many batches of an incarnation; 0: only on SIGHUP or SIGUSR1.
    std::uint64_t restart_every = 0;
    /// A restart closes both sockets and binds them again, as a replaced engine does.
    bool restart_reopens = false;
    /// Publish only once a subscriber's subscription has arrived.
    bool wait_for_subscriber = false;
};

/// Exit status of a command line that was answered without running: 0 for --help, 2 for a
/// usage error (its message, naming the flag, went to `err`).
struct ExitNow {
    int status;
};

/// Reads the command line. --help prints the usage to `out`.
std::variant<PublisherSettings, ExitNow> parse_publisher_flags(int argc,
                                                               const char* const* argv,
                                                               std::ostream& out,
                                                               std::ostream& err);

}  // namespace kvevents::cli

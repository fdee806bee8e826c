#pragma once

// The fleet's cap on replays running at once. Turns are taken and given back by request id, so a
// grant that arrives after its request ended is passed on rather than counted twice.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

namespace kvevents::detail {

class FleetLoop;

class ReplayGate {
public:
    explicit ReplayGate(std::size_t limit) : limit_(limit) {}

    /// A turn granted to a waiting request: to be handed to `loop`.
    struct Turn {
        FleetLoop* loop;
        std::uint64_t stream;
        std::uint64_t id;
    };

    /// True: request `id` of `stream` may run now. False: it waits, and is named by a later
    /// give_back().
    bool take(FleetLoop* loop, std::uint64_t stream, std::uint64_t id);
    /// The request ended, or no longer waits. When that frees a turn, the next waiter's.
    std::optional<Turn> give_back(std::uint64_t stream, std::uint64_t id);

    std::size_t running() const;
    std::size_t waiting() const;

private:
    const std::size_t limit_;
    mutable std::mutex mu_;
    std::set<std::pair<std::uint64_t, std::uint64_t>> running_;  // (stream, id)
    std::deque<Turn> waiting_;
};

}  // namespace kvevents::detail

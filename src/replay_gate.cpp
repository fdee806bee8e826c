#include "replay_gate.h"

#include <algorithm>

namespace kvevents::detail {

bool ReplayGate::take(FleetLoop* loop, std::uint64_t stream, std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_.size() < limit_ && waiting_.empty()) {
        running_.emplace(stream, id);
        return true;
    }
    waiting_.push_back(Turn{loop, stream, id});
    return false;
}

std::optional<ReplayGate::Turn> ReplayGate::give_back(std::uint64_t stream, std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_.erase({stream, id}) == 0) {
        const auto it = std::find_if(waiting_.begin(), waiting_.end(), [&](const Turn& t) {
            return t.stream == stream && t.id == id;
        });
        if (it != waiting_.end())
            waiting_.erase(it);
        return std::nullopt;
    }
    if (waiting_.empty())
        return std::nullopt;
    const Turn next = waiting_.front();
    waiting_.pop_front();
    running_.emplace(next.stream, next.id);
    return next;
}

std::size_t ReplayGate::running() const {
    std::lock_guard<std::mutex> lock(mu_);
    return running_.size();
}

std::size_t ReplayGate::waiting() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_.size();
}

}  // namespace kvevents::detail

#pragma once

// An EventHandler that records everything it is given, and lets a test wait, with a deadline, for
// a condition on what was recorded. Tests synchronise only through it, never by sleeping.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <kvevents/event_handler.h>
#include <kvevents/events.h>

namespace kvevents::test {

struct RecordedBatch {
    std::uint64_t sequence;
    std::string topic;
    std::string pod_key;
    std::string model_name;
    bool replayed;
    EventBatch batch;
};

struct RecordedNotice {
    StreamNotice::Kind kind;
    std::optional<std::uint64_t> first;
    std::optional<std::uint64_t> last;
    ConnectionState state;
    std::string detail;
};

/// One line per handler call, in call order: "batch 3", "restart 0", "lost 2-4", ...
class RecordingHandler : public EventHandler {
public:
    void on_batch(const ReceivedBatch& b) override {
        if (before_batch)
            before_batch(b);
        std::lock_guard<std::recursive_mutex> lock(mu_);
        batches_.push_back(RecordedBatch{b.sequence, std::string(b.topic), b.pod_key, b.model_name,
                                         b.replayed, b.batch});
        log_.push_back("batch " + std::to_string(b.sequence));
        cv_.notify_all();
    }

    void on_notice(const StreamNotice& n) override {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        notices_.push_back(
            RecordedNotice{n.kind, n.first_sequence, n.last_sequence, n.state, n.detail});
        switch (n.kind) {
            case StreamNotice::Kind::kPublisherRestarted:
                log_.push_back("restart");
                break;
            case StreamNotice::Kind::kUnrecoverableGap:
                log_.push_back("lost " + std::to_string(*n.first_sequence) + "-" +
                               std::to_string(*n.last_sequence));
                break;
            case StreamNotice::Kind::kContinuityLost:
                log_.push_back("continuity lost, next " + std::to_string(*n.first_sequence));
                break;
            default:
                break;
        }
        cv_.notify_all();
    }

    /// Waits until pred(*this) holds or the deadline passes. The predicate runs under the
    /// (recursive) lock, on every handler call and at least every 10 ms, so it may also look at
    /// state outside the handler, such as client statistics.
    bool wait_for(const std::function<bool(const RecordingHandler&)>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::unique_lock<std::recursive_mutex> lock(mu_);
        while (!pred(*this)) {
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            cv_.wait_for(lock, std::chrono::milliseconds(10));
        }
        return true;
    }

    bool wait_for_batches(std::size_t count,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return wait_for([count](const RecordingHandler& h) { return h.batches_.size() >= count; },
                        timeout);
    }

    bool wait_for_notice(StreamNotice::Kind kind,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return wait_for([kind](const RecordingHandler& h) { return h.count_locked(kind) > 0; },
                        timeout);
    }

    bool wait_for_state(ConnectionState state,
                        std::size_t occurrences = 1,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return wait_for(
            [&](const RecordingHandler& h) {
                std::size_t n = 0;
                for (const auto& x : h.notices_) {
                    if (x.kind == StreamNotice::Kind::kConnectionChanged && x.state == state)
                        ++n;
                }
                return n >= occurrences;
            },
            timeout);
    }

    std::vector<std::uint64_t> sequences() const {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        std::vector<std::uint64_t> out;
        for (const auto& b : batches_) out.push_back(b.sequence);
        return out;
    }

    std::vector<RecordedBatch> batches() const {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        return batches_;
    }

    std::vector<RecordedNotice> notices() const {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        return notices_;
    }

    std::vector<std::string> log() const {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        return log_;
    }

    std::size_t count(StreamNotice::Kind kind) const {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        return count_locked(kind);
    }

    std::size_t batch_count() const {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        return batches_.size();
    }

    /// Runs on the client's thread before a batch is recorded (to throw, block or stop).
    std::function<void(const ReceivedBatch&)> before_batch;

private:
    std::size_t count_locked(StreamNotice::Kind kind) const {
        std::size_t n = 0;
        for (const auto& x : notices_) n += x.kind == kind ? 1 : 0;
        return n;
    }

    mutable std::recursive_mutex mu_;
    std::condition_variable_any cv_;
    std::vector<RecordedBatch> batches_;
    std::vector<RecordedNotice> notices_;
    std::vector<std::string> log_;
};

/// Sequences first..last inclusive.
inline std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
    return out;
}

}  // namespace kvevents::test

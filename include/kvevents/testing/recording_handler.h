#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <kvevents/event_handler.h>

namespace kvevents::testing {

/// An EventHandler that records every batch and notice it is given, and lets a test wait, with a
/// deadline, for a condition on what was recorded: tests synchronise through it, never by
/// sleeping. It keeps each batch (moved, not copied) and a log with one line per handler call, in
/// call order: "batch 3", "restart", "lost 2-4", "continuity lost, next 5". Thread-safe: the
/// client's thread records while the test's thread waits and reads.
class RecordingHandler : public EventHandler {
public:
    void on_batch(ReceivedBatch& b) override {
        if (before_batch)
            before_batch(b);
        std::lock_guard<std::recursive_mutex> lock(mu_);
        log_.push_back("batch " + std::to_string(b.sequence));
        batches_.push_back(std::move(b));
        cv_.notify_all();
    }

    void on_notice(const StreamNotice& n) override {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        notices_.push_back(n);
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

    std::vector<ReceivedBatch> batches() const {
        std::lock_guard<std::recursive_mutex> lock(mu_);
        return batches_;
    }

    std::vector<StreamNotice> notices() const {
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
    std::vector<ReceivedBatch> batches_;
    std::vector<StreamNotice> notices_;
    std::vector<std::string> log_;
};

}  // namespace kvevents::testing

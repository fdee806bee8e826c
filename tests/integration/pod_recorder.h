#pragma once

// An EventHandler for many publishers at once: what each (pod, rank) was given, in call order,
// and a check that one publisher's calls never overlap. Tests wait on it with deadlines.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <kvevents/event_handler.h>

namespace kvevents::test {

struct PodLog {
    std::vector<std::uint64_t> sequences;  // delivered, in order
    std::vector<StreamNotice::Kind> notices;
    std::string model_name;
    std::size_t count(StreamNotice::Kind kind) const {
        std::size_t n = 0;
        for (const auto k : notices) n += k == kind ? 1U : 0U;
        return n;
    }
    /// 0..n-1 exactly once, in order.
    bool contiguous_from_zero(std::uint64_t n) const {
        if (sequences.size() != n)
            return false;
        for (std::uint64_t i = 0; i < n; ++i)
            if (sequences[i] != i)
                return false;
        return true;
    }
};

using PodId = std::pair<std::string, int>;

class PodRecorder : public EventHandler {
public:
    void on_batch(ReceivedBatch& b) override {
        const PodId id{b.pod_key, b.data_parallel_rank};
        enter(id);
        if (before_batch)
            before_batch(b);
        {
            std::lock_guard<std::mutex> lock(mu_);
            PodLog& log = pods_[id];
            log.sequences.push_back(b.sequence);
            log.model_name = b.model_name;
            ++total_batches_;
        }
        leave(id);
        cv_.notify_all();
    }

    void on_notice(const StreamNotice& n) override {
        const PodId id{n.pod_key, n.data_parallel_rank};
        enter(id);
        {
            std::lock_guard<std::mutex> lock(mu_);
            pods_[id].notices.push_back(n.kind);
        }
        leave(id);
        cv_.notify_all();
    }

    bool wait_for(const std::function<bool(const PodRecorder&)>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::unique_lock<std::mutex> lock(mu_);
        while (!pred(*this)) {
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            cv_.wait_for(lock, std::chrono::milliseconds(10));
        }
        return true;
    }

    /// Under the lock (inside wait_for's predicate) or once the publishers are quiet.
    const PodLog& pod(const std::string& key, int rank = 0) const {
        static const PodLog empty;
        const auto it = pods_.find({key, rank});
        return it == pods_.end() ? empty : it->second;
    }
    PodLog snapshot(const std::string& key, int rank = 0) const {
        std::lock_guard<std::mutex> lock(mu_);
        return pod(key, rank);
    }
    std::size_t total_batches() const { return total_batches_; }
    bool overlapped() const { return overlapped_; }

    /// Runs inside on_batch, before recording (from the loop thread).
    std::function<void(const ReceivedBatch&)> before_batch;

private:
    void enter(const PodId& id) {
        std::lock_guard<std::mutex> lock(active_mu_);
        if (!active_.insert(id).second)
            overlapped_ = true;
    }
    void leave(const PodId& id) {
        std::lock_guard<std::mutex> lock(active_mu_);
        active_.erase(id);
    }

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::map<PodId, PodLog> pods_;
    std::size_t total_batches_ = 0;
    std::mutex active_mu_;
    std::set<PodId> active_;
    std::atomic<bool> overlapped_{false};
};

}  // namespace kvevents::test

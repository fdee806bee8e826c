#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <kvevents/queued_handler.h>

namespace kvevents {

namespace {

using Item = std::variant<ReceivedBatch, StreamNotice>;

}  // namespace

struct QueuedEventHandler::Impl {
    // One publisher's queue. A worker that takes it serves it alone until it is empty or has had
    // its share, so its calls never overlap and stay in order.
    struct Publisher {
        std::string pod_key;
        int rank = 0;
        std::deque<Item> items;
        std::size_t batches = 0;                                         // of `items`
        std::optional<std::pair<std::uint64_t, std::uint64_t>> dropped;  // range not queued
        bool scheduled = false;  // on `ready` or being served
    };

    Impl(EventHandler& h, std::size_t worker_count, std::size_t max_batches)
        : inner(h), max_queued(max_batches) {
        for (std::size_t i = 0; i < worker_count; ++i) workers.emplace_back([this] { work(); });
    }

    ~Impl() {
        {
            std::lock_guard<std::mutex> lock(mu);
            stopping = true;
        }
        wake.notify_all();
        for (auto& w : workers) w.join();
    }

    EventHandler& inner;
    const std::size_t max_queued;
    mutable std::mutex mu;
    std::condition_variable wake;
    std::map<std::pair<std::string, int>, Publisher> publishers;  // guarded by mu
    std::deque<Publisher*> ready;                                 // guarded by mu
    std::size_t total_queued = 0;                                 // guarded by mu
    std::uint64_t dropped_batches = 0;                            // guarded by mu
    std::uint64_t handler_errors = 0;                             // guarded by mu
    bool stopping = false;                                        // guarded by mu
    std::vector<std::thread> workers;

    Publisher& publisher_of(const std::string& pod_key, int rank) {
        Publisher& p = publishers[{pod_key, rank}];
        if (p.pod_key.empty()) {
            p.pod_key = pod_key;
            p.rank = rank;
        }
        return p;
    }

    // The loss notice for batches that found the queue full, in their place in the order.
    void queue_dropped_range(Publisher& p) {
        if (!p.dropped)
            return;
        p.items.push_back(StreamNotice{
            StreamNotice::Kind::kUnrecoverableGap, p.pod_key, p.dropped->first, p.dropped->second,
            ConnectionState::kConnected, "the handler's queue was full", p.rank});
        ++total_queued;
        p.dropped.reset();
    }

    void schedule(Publisher& p) {
        if (p.scheduled)
            return;
        p.scheduled = true;
        ready.push_back(&p);
        wake.notify_one();
    }

    void add_batch(ReceivedBatch& b) {
        std::lock_guard<std::mutex> lock(mu);
        Publisher& p = publisher_of(b.pod_key, b.data_parallel_rank);
        if (p.batches >= max_queued) {
            ++dropped_batches;
            if (p.dropped && p.dropped->second + 1 == b.sequence) {
                p.dropped->second = b.sequence;
            } else {
                queue_dropped_range(p);
                p.dropped.emplace(b.sequence, b.sequence);
            }
            return;
        }
        queue_dropped_range(p);
        p.items.emplace_back(std::move(b));
        ++p.batches;
        ++total_queued;
        schedule(p);
    }

    void add_notice(const StreamNotice& n) {
        std::lock_guard<std::mutex> lock(mu);
        Publisher& p = publisher_of(n.pod_key, n.data_parallel_rank);
        queue_dropped_range(p);
        p.items.emplace_back(n);
        ++total_queued;
        schedule(p);
    }

    void deliver(Item& item) {
        try {
            if (auto* b = std::get_if<ReceivedBatch>(&item)) {
                inner.on_batch(*b);
            } else {
                inner.on_notice(std::get<StreamNotice>(item));
            }
        } catch (...) {
            // Like a client, the queue goes on with the next item; the failure is counted.
            std::lock_guard<std::mutex> lock(mu);
            ++handler_errors;
        }
    }

    void work() {
        constexpr int kShare = 64;  // items per turn, so one busy publisher cannot starve others
        std::unique_lock<std::mutex> lock(mu);
        while (true) {
            wake.wait(lock, [this] { return stopping || !ready.empty(); });
            if (ready.empty())
                return;  // stopping, and everything queued was delivered
            Publisher& p = *ready.front();
            ready.pop_front();
            for (int served = 0; served < kShare && !p.items.empty(); ++served) {
                Item item = std::move(p.items.front());
                p.items.pop_front();
                --total_queued;
                if (std::holds_alternative<ReceivedBatch>(item))
                    --p.batches;
                lock.unlock();
                deliver(item);
                lock.lock();
            }
            if (p.items.empty())
                queue_dropped_range(p);  // a loss at the end, with nothing after it
            if (p.items.empty()) {
                p.scheduled = false;
            } else {
                ready.push_back(&p);
                wake.notify_one();
            }
        }
    }
};

QueuedEventHandler::QueuedEventHandler(EventHandler& inner,
                                       std::size_t workers,
                                       std::size_t max_queued_batches) {
    if (workers == 0)
        throw std::invalid_argument("QueuedEventHandler: workers must be at least 1");
    if (max_queued_batches == 0)
        throw std::invalid_argument("QueuedEventHandler: max_queued_batches must be at least 1");
    impl_ = std::make_unique<Impl>(inner, workers, max_queued_batches);
}

QueuedEventHandler::~QueuedEventHandler() = default;

void QueuedEventHandler::on_batch(ReceivedBatch& batch) {
    impl_->add_batch(batch);
}

void QueuedEventHandler::on_notice(const StreamNotice& notice) {
    impl_->add_notice(notice);
}

std::uint64_t QueuedEventHandler::dropped_batches() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->dropped_batches;
}

std::uint64_t QueuedEventHandler::handler_errors() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->handler_errors;
}

std::size_t QueuedEventHandler::queued() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->total_queued;
}

}  // namespace kvevents

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/queued_handler.h>

namespace kvevents {
namespace {

using namespace std::chrono_literals;

// Records calls per publisher; calls for a pod listed in `blocked` wait until released.
class GatedRecorder final : public EventHandler {
public:
    void on_batch(ReceivedBatch& b) override {
        enter(b.pod_key);
        {
            std::unique_lock<std::mutex> lock(mu_);
            ++waiting_[b.pod_key];
            changed_.notify_all();
            gate_.wait(lock, [&] { return blocked_.count(b.pod_key) == 0; });
            --waiting_[b.pod_key];
            log_[b.pod_key].push_back("batch " + std::to_string(b.sequence));
            if (b.topic != "t" || b.model_name != "m" || b.batch.events.size() != 1 ||
                b.data_parallel_rank != 1)
                corrupted_ = true;
        }
        leave(b.pod_key);
        changed_.notify_all();
        if (b.sequence == 666)
            throw std::runtime_error("boom");
    }
    void on_notice(const StreamNotice& n) override {
        enter(n.pod_key);
        {
            std::lock_guard<std::mutex> lock(mu_);
            log_[n.pod_key].push_back(std::string(to_string(n.kind)) + " " +
                                      std::to_string(n.first_sequence.value_or(0)) + "-" +
                                      std::to_string(n.last_sequence.value_or(0)));
        }
        leave(n.pod_key);
        changed_.notify_all();
    }
    void block(const std::string& pod) {
        std::lock_guard<std::mutex> lock(mu_);
        blocked_.insert(pod);
    }
    void release(const std::string& pod) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            blocked_.erase(pod);
        }
        gate_.notify_all();
    }
    // A call for `pod` is waiting at the gate.
    bool wait_until_held(const std::string& pod) {
        std::unique_lock<std::mutex> lock(mu_);
        return changed_.wait_for(lock, 10s, [&] { return waiting_[pod] > 0; });
    }
    bool wait_for_calls(const std::string& pod, std::size_t n) {
        std::unique_lock<std::mutex> lock(mu_);
        return changed_.wait_for(lock, 10s, [&] { return log_[pod].size() >= n; });
    }
    std::vector<std::string> log(const std::string& pod) {
        std::lock_guard<std::mutex> lock(mu_);
        return log_[pod];
    }
    bool overlapped() const { return overlapped_; }
    bool corrupted() const { return corrupted_; }

private:
    void enter(const std::string& pod) {
        std::lock_guard<std::mutex> lock(active_mu_);
        if (!active_.insert(pod).second)
            overlapped_ = true;
    }
    void leave(const std::string& pod) {
        std::lock_guard<std::mutex> lock(active_mu_);
        active_.erase(pod);
    }
    std::mutex mu_;
    std::condition_variable gate_;
    std::condition_variable changed_;
    std::set<std::string> blocked_;
    std::map<std::string, int> waiting_;
    std::map<std::string, std::vector<std::string>> log_;
    std::mutex active_mu_;
    std::set<std::string> active_;
    std::atomic<bool> overlapped_{false};
    bool corrupted_ = false;
};

void send(EventHandler& h, const std::string& pod, std::uint64_t seq) {
    EventBatch batch;
    batch.events.emplace_back(AllBlocksCleared{});
    ReceivedBatch received{pod, "m", seq, "t", std::move(batch), false, 1};
    h.on_batch(received);
}

void notice(EventHandler& h, const std::string& pod, StreamNotice::Kind kind, std::uint64_t seq) {
    h.on_notice(StreamNotice{kind, pod, seq, std::nullopt, ConnectionState::kConnected, {}, 1});
}

std::vector<std::string> batches(std::uint64_t first, std::uint64_t last) {
    std::vector<std::string> out;
    for (std::uint64_t s = first; s <= last; ++s) out.push_back("batch " + std::to_string(s));
    return out;
}

TEST(QueuedEventHandler, KeepsEachPublishersOrderWithCallsThatNeverOverlap) {
    GatedRecorder inner;
    QueuedEventHandler queued(inner, 4, 1000);
    for (std::uint64_t s = 0; s < 300; ++s)
        for (const char* pod : {"a", "b", "c"}) send(queued, pod, s);
    notice(queued, "b", StreamNotice::Kind::kPublisherRestarted, 0);
    send(queued, "b", 0);
    for (const char* pod : {"a", "c"}) {
        ASSERT_TRUE(inner.wait_for_calls(pod, 300));
        EXPECT_EQ(inner.log(pod), batches(0, 299));
    }
    ASSERT_TRUE(inner.wait_for_calls("b", 302));
    auto expected_b = batches(0, 299);
    expected_b.push_back("publisher_restarted 0-0");
    expected_b.push_back("batch 0");
    EXPECT_EQ(inner.log("b"), expected_b);
    EXPECT_FALSE(inner.overlapped());
    EXPECT_FALSE(inner.corrupted());
    EXPECT_EQ(queued.dropped_batches(), 0U);
}

TEST(QueuedEventHandler, ABlockedPublisherDelaysOnlyItself) {
    GatedRecorder inner;
    QueuedEventHandler queued(inner, 2, 100);
    inner.block("slow");
    send(queued, "slow", 0);
    for (std::uint64_t s = 0; s < 50; ++s) send(queued, "fast", s);
    ASSERT_TRUE(inner.wait_for_calls("fast", 50));
    EXPECT_TRUE(inner.log("slow").empty());
    inner.release("slow");
    ASSERT_TRUE(inner.wait_for_calls("slow", 1));
}

TEST(QueuedEventHandler, AFullQueueBecomesOneLossNoticeInItsPlace) {
    GatedRecorder inner;
    QueuedEventHandler queued(inner, 2, 2);
    inner.block("a");
    send(queued, "a", 0);
    ASSERT_TRUE(inner.wait_until_held("a"));  // 0 is in the handler; the queue is empty
    for (std::uint64_t s = 1; s < 10; ++s) send(queued, "a", s);
    EXPECT_EQ(queued.dropped_batches(), 7U);  // 1 and 2 fit
    inner.release("a");
    // With nothing after them, the dropped batches are announced once the queue drains.
    ASSERT_TRUE(inner.wait_for_calls("a", 4));
    send(queued, "a", 10);
    ASSERT_TRUE(inner.wait_for_calls("a", 5));
    auto expected = batches(0, 2);
    expected.push_back("unrecoverable_gap 3-9");
    expected.push_back("batch 10");
    EXPECT_EQ(inner.log("a"), expected);

    // With a batch after them that finds room, the notice goes just before it.
    inner.block("a");
    send(queued, "a", 11);
    ASSERT_TRUE(inner.wait_until_held("a"));
    for (std::uint64_t s = 12; s < 16; ++s) send(queued, "a", s);  // 12, 13 fit; 14, 15 do not
    send(queued, "b", 0);  // another publisher is not affected
    ASSERT_TRUE(inner.wait_for_calls("b", 1));
    EXPECT_EQ(queued.dropped_batches(), 9U);
    inner.release("a");
    ASSERT_TRUE(inner.wait_for_calls("a", 9));
    expected.push_back("batch 11");
    expected.push_back("batch 12");
    expected.push_back("batch 13");
    expected.push_back("unrecoverable_gap 14-15");
    EXPECT_EQ(inner.log("a"), expected);
}

TEST(QueuedEventHandler, AThrowingHandlerIsCountedAndTheQueueGoesOn) {
    GatedRecorder inner;
    QueuedEventHandler queued(inner, 1, 10);
    send(queued, "a", 666);
    send(queued, "a", 667);
    ASSERT_TRUE(inner.wait_for_calls("a", 2));
    for (int i = 0; i < 100 && queued.handler_errors() == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(queued.handler_errors(), 1U);
}

TEST(QueuedEventHandler, TheDestructorDeliversWhatIsQueued) {
    GatedRecorder inner;
    {
        QueuedEventHandler queued(inner, 2, 1000);
        for (std::uint64_t s = 0; s < 500; ++s) send(queued, "a", s);
    }
    EXPECT_EQ(inner.log("a").size(), 500U);
    EXPECT_THROW(QueuedEventHandler(inner, 0, 1), std::invalid_argument);
    EXPECT_THROW(QueuedEventHandler(inner, 1, 0), std::invalid_argument);
}

}  // namespace
}  // namespace kvevents

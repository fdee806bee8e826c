// A randomized model test of the Fleet against real sockets: a seeded sequence of adds, replaces,
// removes, publishes, live drops and publisher restarts over a pool of mock publishers. After
// every step the fleet settles and an oracle checks it against a model: which pods are followed,
// that each one's stream since its subscription (or the publisher's last restart) is exactly the
// publisher's batches in order, that removed pods get no calls, that calls never overlap, and
// that no loss is announced where none happened. A failure prints the seed and a shrunk trace.
//
// KVEVENTS_FLEET_MODEL_SEED runs one seed; KVEVENTS_FLEET_MODEL_RUNS sets how many seeds.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/fleet.h>
#include <kvevents/testing/mock_publisher.h>

#include "client_fixtures.h"

namespace kvevents::test {
namespace {

using namespace std::chrono_literals;

constexpr int kPublishers = 6;
constexpr int kPods = 5;

enum class OpKind { kAdd, kRemove, kPublish, kDropNext, kRestart };

struct Op {
    OpKind kind;
    int pod = 0;
    int publisher = 0;
    int count = 0;
};

std::string describe(const Op& op) {
    switch (op.kind) {
        case OpKind::kAdd:
            return "add pod" + std::to_string(op.pod) + " -> pub" + std::to_string(op.publisher);
        case OpKind::kRemove:
            return "remove pod" + std::to_string(op.pod);
        case OpKind::kPublish:
            return "publish " + std::to_string(op.count) + " on pub" + std::to_string(op.publisher);
        case OpKind::kDropNext:
            return "drop the next live batch of pub" + std::to_string(op.publisher);
        case OpKind::kRestart:
            return "restart pub" + std::to_string(op.publisher);
    }
    return "?";
}

std::vector<Op> random_ops(std::uint64_t seed, int count) {
    std::mt19937_64 rng(seed);
    const auto pick = [&rng](int lo, int hi) {
        return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    std::vector<Op> ops;
    for (int i = 0; i < count; ++i) {
        const int r = pick(0, 99);
        Op op{OpKind::kPublish, pick(0, kPods - 1), pick(0, kPublishers - 1), pick(1, 6)};
        if (r < 25) {
            op.kind = OpKind::kAdd;
        } else if (r < 35) {
            op.kind = OpKind::kRemove;
        } else if (r < 80) {
            op.kind = OpKind::kPublish;
        } else if (r < 92) {
            op.kind = OpKind::kDropNext;
        } else {
            op.kind = OpKind::kRestart;
        }
        ops.push_back(op);
    }
    return ops;
}

// What the handler saw, per pod, for the subscription the test expects (tagged in model_name).
class ModelHandler final : public EventHandler {
public:
    void on_batch(ReceivedBatch& b) override {
        enter(b.pod_key);
        {
            std::lock_guard<std::mutex> lock(mu_);
            Pod& pod = pods_[b.pod_key];
            if (pod.removed) {
                violation("pod " + b.pod_key + " got batch " + std::to_string(b.sequence) +
                          " after remove() returned");
            } else if (b.model_name == pod.generation) {
                pod.epoch.push_back(b.sequence);
            }
        }
        leave(b.pod_key);
        cv_.notify_all();
    }
    void on_notice(const StreamNotice& n) override {
        enter(n.pod_key);
        {
            std::lock_guard<std::mutex> lock(mu_);
            Pod& pod = pods_[n.pod_key];
            switch (n.kind) {
                case StreamNotice::Kind::kPublisherRestarted:
                case StreamNotice::Kind::kContinuityLost:
                    pod.epoch.clear();
                    ++pod.resets;
                    break;
                case StreamNotice::Kind::kUnrecoverableGap:
                case StreamNotice::Kind::kDecodeError:
                case StreamNotice::Kind::kHandlerError:
                    violation("pod " + n.pod_key + ": unexpected " + to_string(n.kind) +
                              " notice: " + n.detail);
                    break;
                default:
                    break;
            }
        }
        leave(n.pod_key);
        cv_.notify_all();
    }

    // Before add(): calls of this generation are the ones that count from now on.
    void expect_generation(const std::string& pod, const std::string& generation) {
        std::lock_guard<std::mutex> lock(mu_);
        Pod& p = pods_[pod];
        p.generation = generation;
        p.epoch.clear();
        p.removed = false;
    }
    void removed(const std::string& pod) {
        std::lock_guard<std::mutex> lock(mu_);
        pods_[pod].removed = true;
    }
    std::vector<std::uint64_t> epoch(const std::string& pod) {
        std::lock_guard<std::mutex> lock(mu_);
        return pods_[pod].epoch;
    }
    template <class Pred>
    bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::unique_lock<std::mutex> lock(mu_);
        while (!pred()) {
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            lock.unlock();
            {
                std::unique_lock<std::mutex> wait_lock(wait_mu_);
                cv_.wait_for(wait_lock, 10ms);
            }
            lock.lock();
        }
        return true;
    }
    std::string violations() {
        std::lock_guard<std::mutex> lock(mu_);
        return violations_;
    }
    std::mutex& mu() { return mu_; }
    std::vector<std::uint64_t>& epoch_locked(const std::string& pod) { return pods_[pod].epoch; }

private:
    struct Pod {
        std::string generation;
        std::vector<std::uint64_t> epoch;
        bool removed = false;
        int resets = 0;
    };
    void violation(const std::string& what) {
        if (violations_.empty())
            violations_ = what;
    }
    void enter(const std::string& pod) {
        std::lock_guard<std::mutex> lock(active_mu_);
        if (!active_.insert(pod).second) {
            std::lock_guard<std::mutex> data_lock(mu_);
            violation("calls for pod " + pod + " overlapped");
        }
    }
    void leave(const std::string& pod) {
        std::lock_guard<std::mutex> lock(active_mu_);
        active_.erase(pod);
    }

    std::mutex mu_;
    std::map<std::string, Pod> pods_;
    std::string violations_;
    std::mutex wait_mu_;
    std::condition_variable cv_;
    std::mutex active_mu_;
    std::set<std::string> active_;
};

struct RunResult {
    bool ok = true;
    std::string failure;
    std::size_t steps = 0;
};

// Runs the operations; after each, waits for the fleet to settle and checks the oracle.
// `read_tcp_directly`: the fleet's own ZMTP reader, or libzmq SUB sockets.
RunResult run(const std::vector<Op>& ops, bool read_tcp_directly, bool verbose) {
    std::vector<std::unique_ptr<testing::MockPublisher>> pubs;
    testing::MockPublisherOptions pub_options;
    pub_options.report_every_subscription = true;  // pods may share a publisher
    for (int i = 0; i < kPublishers; ++i)
        pubs.push_back(std::make_unique<testing::MockPublisher>(pub_options));
    ModelHandler handler;
    FleetOptions fleet_options;
    fleet_options.loop_threads = 2;
    fleet_options.max_concurrent_replays = 2;
    fleet_options.planned_publishers = 16;
    fleet_options.read_tcp_directly = read_tcp_directly;
    Fleet fleet(fleet_options, handler);

    struct PodModel {
        int publisher = -1;     // -1: not followed
        ClientOptions options;  // as last added
        // The publisher restarted since the subscription and has published nothing since: the
        // subscription cannot know yet, either way is right.
        bool restart_unseen = false;
    };
    std::vector<PodModel> model(kPods);
    // Each incarnation's batches differ in their bytes, as a real engine's do.
    std::vector<std::uint64_t> incarnation(kPublishers, 0);
    // Sequences armed to be dropped live (the mock keeps them across restarts), and how many of
    // the last batches published were dropped: a loss at the very end of a stream, with nothing
    // after it, shows only when the next batch arrives (a start-up replay may have them, too).
    std::vector<std::set<std::uint64_t>> armed(kPublishers);
    std::vector<std::uint64_t> trailing_dropped(kPublishers, 0);
    int generation = 0;
    RunResult result;

    const auto pod_key = [](int pod) { return "pod" + std::to_string(pod); };
    const auto check = [&](const std::string& after) -> bool {
        // The fleet lists exactly the pods the model follows.
        std::set<std::string> listed;
        for (const auto& p : fleet.publishers()) listed.insert(p.pod_key);
        std::set<std::string> expected;
        for (int pod = 0; pod < kPods; ++pod)
            if (model[static_cast<std::size_t>(pod)].publisher >= 0)
                expected.insert(pod_key(pod));
        if (listed != expected) {
            result.failure = "after " + after + ": the fleet lists " +
                             std::to_string(listed.size()) + " pods, the model " +
                             std::to_string(expected.size());
            return false;
        }
        // Each followed pod settles on exactly its publisher's current incarnation, in order.
        for (int pod = 0; pod < kPods; ++pod) {
            const PodModel& m = model[static_cast<std::size_t>(pod)];
            if (m.publisher < 0 || m.restart_unseen)
                continue;
            const std::uint64_t published =
                pubs[static_cast<std::size_t>(m.publisher)]->next_sequence();
            const std::uint64_t at_least =
                published - trailing_dropped[static_cast<std::size_t>(m.publisher)];
            const bool settled = handler.wait_for(
                [&] {
                    const auto& e = handler.epoch_locked(pod_key(pod));
                    if (e.size() < at_least || e.size() > published)
                        return false;
                    for (std::uint64_t i = 0; i < e.size(); ++i)
                        if (e[i] != i)
                            return false;
                    return true;
                },
                5s);
            if (!settled) {
                const auto e = handler.epoch(pod_key(pod));
                std::ostringstream seen;
                for (const auto s : e) seen << s << ' ';
                result.failure = "after " + after + ": " + pod_key(pod) + " (pub" +
                                 std::to_string(m.publisher) + ", " + std::to_string(published) +
                                 " published) delivered [" + seen.str() + "]";
                return false;
            }
        }
        const std::string violations = handler.violations();
        if (!violations.empty()) {
            result.failure = "after " + after + ": " + violations;
            return false;
        }
        return true;
    };

    for (const Op& op : ops) {
        if (verbose)
            std::cerr << "  " << describe(op) << '\n';
        auto& pub = *pubs[static_cast<std::size_t>(op.publisher)];
        PodModel& m = model[static_cast<std::size_t>(op.pod)];
        switch (op.kind) {
            case OpKind::kAdd: {
                if (m.publisher == op.publisher) {
                    const AddOutcome again = fleet.add(m.options);
                    if (again != AddOutcome::kUnchanged) {
                        result.failure =
                            describe(op) + ": the same settings again gave " + to_string(again);
                        result.ok = false;
                        return result;
                    }
                    break;
                }
                const std::string gen = "gen" + std::to_string(++generation);
                ClientOptions o = options_for(pub);
                o.pod_key = pod_key(op.pod);
                o.model_name = gen;
                o.tail_probe_idle = 100ms;
                o.replay_idle_timeout = 1s;
                handler.expect_generation(o.pod_key, gen);
                const AddOutcome outcome = fleet.add(o);
                const AddOutcome expected =
                    m.publisher < 0 ? AddOutcome::kAdded : AddOutcome::kReplaced;
                if (outcome != expected) {
                    result.failure = describe(op) + ": add() said " + to_string(outcome);
                    result.ok = false;
                    return result;
                }
                if (!pub.wait_for_subscriber(10s)) {
                    result.failure = describe(op) + ": never subscribed";
                    result.ok = false;
                    return result;
                }
                m.publisher = op.publisher;
                m.options = o;
                m.restart_unseen = false;
                break;
            }
            case OpKind::kRemove: {
                const bool removed = fleet.remove(pod_key(op.pod));
                if (removed != (m.publisher >= 0)) {
                    result.failure = describe(op) + ": remove() said " + (removed ? "yes" : "no");
                    result.ok = false;
                    return result;
                }
                handler.removed(pod_key(op.pod));
                m.publisher = -1;
                break;
            }
            case OpKind::kPublish: {
                const auto p = static_cast<std::size_t>(op.publisher);
                bool any_sent = false;
                for (int k = 0; k < op.count; ++k) {
                    const bool dropped = armed[p].erase(pub.next_sequence()) != 0;
                    trailing_dropped[p] = dropped ? trailing_dropped[p] + 1 : 0;
                    any_sent = any_sent || !dropped;
                    publish_n(pub, 1, incarnation[p]);
                }
                // A restart shows once a batch of the new incarnation gets through.
                for (auto& pm : model)
                    if (pm.publisher == op.publisher && any_sent)
                        pm.restart_unseen = false;
                break;
            }
            case OpKind::kDropNext:
                pub.drop_live({pub.next_sequence()});
                armed[static_cast<std::size_t>(op.publisher)].insert(pub.next_sequence());
                break;
            case OpKind::kRestart:
                pub.restart();
                ++incarnation[static_cast<std::size_t>(op.publisher)];
                trailing_dropped[static_cast<std::size_t>(op.publisher)] = 0;
                for (auto& pm : model)
                    if (pm.publisher == op.publisher)
                        pm.restart_unseen = true;
                break;
        }
        ++result.steps;
        if (!check(describe(op))) {
            result.ok = false;
            return result;
        }
    }
    return result;
}

std::vector<Op> shrink(std::vector<Op> ops,
                       const std::string& failure,
                       bool read_tcp_directly,
                       int budget) {
    const auto kind = [](const std::string& f) { return f.substr(f.find(": ") + 2, 24); };
    for (std::size_t chunk = ops.size() / 2; chunk >= 1 && budget > 0; chunk /= 2) {
        for (std::size_t start = 0; start + chunk <= ops.size() && budget > 0;) {
            std::vector<Op> candidate(ops.begin(),
                                      ops.begin() + static_cast<std::ptrdiff_t>(start));
            candidate.insert(candidate.end(),
                             ops.begin() + static_cast<std::ptrdiff_t>(start + chunk), ops.end());
            --budget;
            const RunResult r = run(candidate, read_tcp_directly, false);
            if (!r.ok && kind(r.failure) == kind(failure)) {
                ops = std::move(candidate);
            } else {
                start += chunk;
            }
        }
    }
    return ops;
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* value = std::getenv(name);
    return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

TEST(FleetModel, RandomAddsRemovesRestartsAndDropsKeepEveryStreamExact) {
    const std::uint64_t runs = env_or("KVEVENTS_FLEET_MODEL_RUNS", 20);
    const std::uint64_t first_seed = env_or(
        "KVEVENTS_FLEET_MODEL_SEED",
        static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
    for (std::uint64_t i = 0; i < runs; ++i) {
        const std::uint64_t seed = first_seed + i;
        const auto ops = random_ops(seed, 30);
        // Both ways of reading a publisher, alternating by seed.
        const bool direct = seed % 2 == 0;
        const RunResult r = run(ops, direct, false);
        if (r.ok)
            continue;
        const auto shrunk = shrink(ops, r.failure, direct, 30);
        std::ostringstream trace;
        for (const Op& op : shrunk) trace << "  " << describe(op) << '\n';
        ADD_FAILURE() << "seed " << seed << " (KVEVENTS_FLEET_MODEL_SEED=" << seed << ", "
                      << (direct ? "ZMTP reader" : "libzmq") << "): " << r.failure
                      << "\nshrunk trace (" << shrunk.size() << " of " << ops.size() << " steps):\n"
                      << trace.str();
        return;
    }
}

}  // namespace
}  // namespace kvevents::test

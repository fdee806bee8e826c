#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>

#include <kvevents/fleet.h>

#include "endpoint_syntax.h"
#include "fleet_loop.h"
#include "fleet_member.h"
#include "logger_or_silent.h"
#include "zmq_context_access.h"

namespace kvevents {

const char* to_string(AddOutcome outcome) {
    switch (outcome) {
        case AddOutcome::kAdded:
            return "added";
        case AddOutcome::kUnchanged:
            return "unchanged";
        case AddOutcome::kReplaced:
            return "replaced";
    }
    return "unknown";
}

FanInTopic parse_fan_in_topic(std::string_view topic) {
    constexpr std::string_view prefix = "kv@";
    if (topic.substr(0, prefix.size()) == prefix) {
        const std::string_view rest = topic.substr(prefix.size());
        const auto at = rest.find('@');
        if (at != std::string_view::npos && at > 0 && at + 1 < rest.size())
            return FanInTopic{std::string(rest.substr(0, at)), std::string(rest.substr(at + 1))};
    }
    return FanInTopic{std::string(topic), std::nullopt};
}

namespace {

constexpr int kMinQueue = 16;  // batches: below this a short burst already drops

void check_fleet_options(const FleetOptions& o) {
    const auto fail = [](const std::string& what) {
        throw std::invalid_argument("FleetOptions." + what);
    };
    if (o.loop_threads > 1024)
        fail("loop_threads must be at most 1024, got " + std::to_string(o.loop_threads));
    if (!o.context && (o.io_threads < 1 || o.io_threads > 64))
        fail("io_threads must be 1..64, got " + std::to_string(o.io_threads));
    if (o.max_concurrent_replays == 0)
        fail("max_concurrent_replays must be at least 1");
    if (o.batch_bytes_estimate == 0)
        fail("batch_bytes_estimate must be positive");
    if (o.planned_publishers == 0)
        fail("planned_publishers must be at least 1");
    if (o.memory_budget_bytes / o.planned_publishers < 4 * o.batch_bytes_estimate * kMinQueue)
        fail("memory_budget_bytes (" + std::to_string(o.memory_budget_bytes) +
             ") leaves each of planned_publishers (" + std::to_string(o.planned_publishers) +
             ") less than " + std::to_string(kMinQueue) + " batches of batch_bytes_estimate (" +
             std::to_string(o.batch_bytes_estimate) + ") per queue; raise the budget");
    if (o.max_fan_in_streams == 0)
        fail("max_fan_in_streams must be at least 1");
}

std::shared_ptr<ZmqContext> fleet_context(const FleetOptions& o) {
    if (o.context)
        return o.context;
    ZmqContextOptions context_options;
    context_options.io_threads = o.io_threads;
    return std::make_shared<ZmqContext>(context_options);
}

std::size_t loop_count(const FleetOptions& o) {
    if (o.loop_threads != 0)
        return o.loop_threads;
    return std::max(1U, std::thread::hardware_concurrency());
}

using Key = std::pair<std::string, int>;

}  // namespace

struct Fleet::Impl {
    Impl(FleetOptions opts, EventHandler& h)
        : options((check_fleet_options(opts), std::move(opts))),
          handler(h),
          log(detail::logger_or_silent(options.logger)),
          context(fleet_context(options)),
          gate(options.max_concurrent_replays) {
        const std::size_t n = loop_count(options);
        loops.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            loops.push_back(std::make_unique<detail::FleetLoop>(
                detail::FleetLoop::Settings{i, options.max_fan_in_streams,
                                            options.read_tcp_directly},
                detail::ZmqContextAccess::context(*context), gate));
        }
    }

    ~Impl() { stop(); }

    void stop() {
        std::map<Key, std::shared_ptr<detail::FleetMember>> all;
        {
            std::lock_guard<std::mutex> lock(mu);
            if (stopped)
                return;
            stopped = true;
            all = members;  // kept for their statistics
        }
        for (auto& entry : all) stop_member(entry.second, true);
        for (const auto& loop : loops) wakeups_before_stop += loop->wakeups();
        loops.clear();  // joins
    }

    std::uint64_t wakeups() const {
        std::uint64_t total = wakeups_before_stop;
        for (const auto& loop : loops) total += loop->wakeups();
        return total;
    }

    const FleetOptions options;
    EventHandler& handler;
    const std::shared_ptr<spdlog::logger> log;
    const std::shared_ptr<ZmqContext> context;
    detail::ReplayGate gate;
    std::vector<std::unique_ptr<detail::FleetLoop>> loops;

    mutable std::mutex mu;
    std::map<Key, std::shared_ptr<detail::FleetMember>> members;  // guarded by mu
    bool stopped = false;                                         // guarded by mu
    std::uint64_t wakeups_before_stop = 0;

    bool on_a_loop_thread() const {
        return std::any_of(loops.begin(), loops.end(),
                           [](const auto& l) { return l->on_loop_thread(); });
    }

    detail::FleetLoop& least_loaded_loop() const {
        return **std::min_element(loops.begin(), loops.end(), [](const auto& a, const auto& b) {
            return a->member_count() < b->member_count();
        });
    }

    // The budget's share for one more publisher, as FleetOptions documents it.
    ClientOptions within_budget(ClientOptions o, std::size_t publishers) const {
        const std::size_t share =
            options.memory_budget_bytes / std::max(options.planned_publishers, publishers);
        const auto fit = [](std::size_t wanted, std::size_t allowed) {
            return std::min(wanted, std::max(allowed, static_cast<std::size_t>(kMinQueue)));
        };
        o.receive_hwm = static_cast<int>(fit(static_cast<std::size_t>(o.receive_hwm),
                                             share / (4 * options.batch_bytes_estimate)));
        o.max_buffered_batches =
            fit(o.max_buffered_batches, share / (2 * options.batch_bytes_estimate));
        o.context = context;
        if (!o.logger)
            o.logger = log;
        return o;
    }

    AddOutcome add(ClientOptions requested, std::optional<int> replay_port, EventHandler* h) {
        validate(requested);
        if (replay_port && (*replay_port < 1 || *replay_port > 65535))
            throw std::invalid_argument("fan-in replay port must be 1..65535, got " +
                                        std::to_string(*replay_port));
        EventHandler& target = h != nullptr ? *h : handler;
        Key key{requested.pod_key, requested.data_parallel_rank};
        std::shared_ptr<detail::FleetMember> old;
        std::shared_ptr<detail::FleetMember> member;
        detail::FleetLoop* loop = nullptr;
        {
            std::lock_guard<std::mutex> lock(mu);
            if (stopped)
                throw std::logic_error("Fleet::add after stop()");
            const auto it = members.find(key);
            if (it != members.end()) {
                old = it->second;
                if (same_settings(old->requested, requested) && &old->handler == &target &&
                    old->replay_port == replay_port)
                    return AddOutcome::kUnchanged;
            }
            ClientOptions effective = within_budget(requested, members.size() + (old ? 0 : 1));
            auto member_log = effective.logger;
            member =
                std::make_shared<detail::FleetMember>(std::move(requested), std::move(effective),
                                                      replay_port, target, std::move(member_log));
            // A replacement runs on its predecessor's loop, so that the old subscription is closed
            // before the new one opens (a bound endpoint is free again) even when nobody waits.
            loop = old ? old->loop : &least_loaded_loop();
            member->loop = loop;
            members[key] = member;
        }
        // The lookup blocks: never on a loop thread (from a handler), where it would stall every
        // publisher of that loop.
        if (!on_a_loop_thread()) {
            detail::warn_if_unresolvable(member->endpoints, member->options.bind,
                                         member->options.pod_key, *member->log);
        }
        if (old)
            stop_member(old, false);
        const bool wait = !on_a_loop_thread();
        auto attach = [loop, member] { loop->attach(member); };
        if (!wait) {
            loop->post([this, loop, member, key] {
                try {
                    loop->attach(member);
                } catch (const std::exception& e) {
                    forget_failed(key, member);
                    member->log->error("[{}] cannot open {}: {}", key.first, member->endpoints.live,
                                       e.what());
                }
            });
            return old ? AddOutcome::kReplaced : AddOutcome::kAdded;
        }
        try {
            loop->run_and_wait(attach);
        } catch (const std::exception& e) {
            forget_failed(key, member);
            throw std::runtime_error("Fleet: '" + key.first + "' rank " +
                                     std::to_string(key.second) + ": cannot open " +
                                     member->endpoints.live + ": " + e.what());
        }
        return old ? AddOutcome::kReplaced : AddOutcome::kAdded;
    }

    void forget_failed(const Key& key, const std::shared_ptr<detail::FleetMember>& member) {
        std::lock_guard<std::mutex> lock(mu);
        const auto it = members.find(key);
        if (it != members.end() && it->second == member)
            members.erase(it);
    }

    // Stops delivery at once (no handler call starts after this), then closes the sockets on the
    // member's loop; waits for that unless called from a loop thread, where waiting could
    // deadlock (the loop may be this one, or one waiting for this one).
    void stop_member(const std::shared_ptr<detail::FleetMember>& member, bool always_wait) {
        member->stop = true;
        {
            std::lock_guard<std::mutex> lock(member->mu);
            if (member->stream)
                member->stream->stop_delivery();
            for (auto& s : member->topic_streams) s->stop_delivery();
        }
        detail::FleetLoop* loop = member->loop;
        auto detach = [loop, member] { loop->detach(member); };
        if (always_wait || !on_a_loop_thread()) {
            loop->run_and_wait(detach);
        } else {
            loop->post(detach);
        }
    }

    bool remove(const Key& key) {
        std::shared_ptr<detail::FleetMember> member;
        {
            std::lock_guard<std::mutex> lock(mu);
            if (stopped)
                return false;
            const auto it = members.find(key);
            if (it == members.end())
                return false;
            member = it->second;
            members.erase(it);
        }
        stop_member(member, false);
        return true;
    }

    std::vector<Key> keys_of_pod(const std::string& pod_key) const {
        std::lock_guard<std::mutex> lock(mu);
        std::vector<Key> keys;
        for (auto it = members.lower_bound(Key{pod_key, std::numeric_limits<int>::min()});
             it != members.end() && it->first.first == pod_key; ++it)
            keys.push_back(it->first);
        return keys;
    }

    std::vector<PublisherStatus> statuses() const {
        std::vector<PublisherStatus> out;
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& entry : members) {
            const std::shared_ptr<detail::FleetMember>& member = entry.second;
            std::lock_guard<std::mutex> member_lock(member->mu);
            const auto status = [&](const detail::PublisherStream& s, bool fan_in,
                                    std::string topic) {
                PublisherStatus p;
                p.pod_key = s.options().pod_key;
                p.data_parallel_rank = s.options().data_parallel_rank;
                p.model_name = s.options().model_name;
                p.endpoint = member->opened_endpoint.empty() ? member->endpoints.live
                                                             : member->opened_endpoint;
                p.replay_endpoint = s.replay_endpoint();
                p.fan_in = fan_in;
                p.topic = std::move(topic);
                p.receive_hwm = member->options.receive_hwm;
                p.max_buffered_batches = member->options.max_buffered_batches;
                p.stats = s.stats();
                return p;
            };
            if (member->stream)
                out.push_back(status(*member->stream, member->fan_in(), std::string()));
            for (std::size_t i = 0; i < member->topic_streams.size(); ++i)
                out.push_back(status(*member->topic_streams[i], true, member->topics[i]));
        }
        std::sort(out.begin(), out.end(), [](const PublisherStatus& a, const PublisherStatus& b) {
            return std::tie(a.pod_key, a.data_parallel_rank, a.topic) <
                   std::tie(b.pod_key, b.data_parallel_rank, b.topic);
        });
        return out;
    }
};

Fleet::Fleet(FleetOptions options, EventHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

Fleet::~Fleet() = default;

void Fleet::stop() {
    impl_->stop();
}

AddOutcome Fleet::add(ClientOptions options, EventHandler* handler) {
    if (options.bind)
        return add_fan_in(std::move(options), std::nullopt, handler);
    return impl_->add(std::move(options), std::nullopt, handler);
}

std::vector<AddOutcome> Fleet::add_pod(const ClientOptions& options,
                                       int dp_size,
                                       EventHandler* handler) {
    if (dp_size < 1 || dp_size > 1024)
        throw std::invalid_argument("Fleet::add_pod: dp_size must be 1..1024, got " +
                                    std::to_string(dp_size));
    std::vector<AddOutcome> outcomes;
    for (int rank = 0; rank < dp_size; ++rank) {
        ClientOptions rank_options = options;
        rank_options.data_parallel_rank = rank;
        outcomes.push_back(impl_->add(std::move(rank_options), std::nullopt, handler));
    }
    for (const auto& key : impl_->keys_of_pod(options.pod_key)) {
        if (key.second >= dp_size)
            impl_->remove(key);
    }
    return outcomes;
}

AddOutcome Fleet::add_fan_in(ClientOptions options,
                             std::optional<int> replay_port,
                             EventHandler* handler) {
    options.bind = true;
    return impl_->add(std::move(options), replay_port, handler);
}

bool Fleet::remove(const std::string& pod_key, int data_parallel_rank) {
    return impl_->remove(Key{pod_key, data_parallel_rank});
}

std::size_t Fleet::remove_pod(const std::string& pod_key) {
    std::size_t removed = 0;
    for (const auto& key : impl_->keys_of_pod(pod_key)) removed += impl_->remove(key) ? 1U : 0U;
    return removed;
}

std::vector<PublisherStatus> Fleet::publishers() const {
    return impl_->statuses();
}

std::optional<PublisherStatus> Fleet::publisher(const std::string& pod_key,
                                                int data_parallel_rank) const {
    for (auto& p : impl_->statuses()) {
        if (p.pod_key == pod_key && p.data_parallel_rank == data_parallel_rank)
            return std::move(p);
    }
    return std::nullopt;
}

FleetStats Fleet::stats() const {
    FleetStats out;
    for (const auto& p : impl_->statuses()) {
        const ClientStats& s = p.stats;
        ClientStats& t = out.totals;
        t.batches += s.batches;
        t.events += s.events;
        t.bytes += s.bytes;
        t.decode_errors += s.decode_errors;
        t.unknown_events += s.unknown_events;
        t.gaps_detected += s.gaps_detected;
        t.replays_requested += s.replays_requested;
        t.replays_completed += s.replays_completed;
        t.replays_failed += s.replays_failed;
        t.batches_recovered += s.batches_recovered;
        t.batches_unrecoverable += s.batches_unrecoverable;
        t.duplicates_dropped += s.duplicates_dropped;
        t.live_dropped_while_buffering += s.live_dropped_while_buffering;
        t.restarts += s.restarts;
        t.continuity_lost += s.continuity_lost;
        t.reconnects += s.reconnects;
        t.handler_errors += s.handler_errors;
        t.max_lag = std::max(t.max_lag, s.max_lag);
        ++out.publishers;
        switch (s.state) {
            case ConnectionState::kConnecting:
                ++out.connecting;
                break;
            case ConnectionState::kConnected:
                ++out.connected;
                break;
            case ConnectionState::kDisconnected:
                ++out.disconnected;
                break;
            case ConnectionState::kFailed:
                ++out.failed;
                break;
            case ConnectionState::kStopped:
                break;
        }
    }
    out.replays_running = impl_->gate.running();
    out.replays_waiting = impl_->gate.waiting();
    out.wakeups = impl_->wakeups();
    return out;
}

std::string Fleet::fan_in_endpoint(const std::string& pod_key) const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    const auto it = impl_->members.find(Key{pod_key, 0});
    if (it == impl_->members.end() || !it->second->fan_in())
        return {};
    std::lock_guard<std::mutex> member_lock(it->second->mu);
    return it->second->opened_endpoint;
}

std::size_t Fleet::loop_threads() const {
    return impl_->loops.size();
}

const FleetOptions& Fleet::options() const {
    return impl_->options;
}

}  // namespace kvevents

#include "fleet_loop.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <new>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <kvevents/fleet.h>

#include "endpoint_syntax.h"
#include "fan_in_demux.h"

namespace kvevents::detail {

namespace {

constexpr std::uint64_t kWakeToken = 0;
constexpr int kMaxEventsPerWait = 256;

int checked_fd(int fd, const char* what) {
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), what);
    return fd;
}

// Unique across loops: the replay gate, shared by all of them, knows streams by it.
std::uint64_t next_stream_id() {
    static std::atomic<std::uint64_t> next{1};
    return next++;
}

int timeout_ms(std::optional<TimePoint> deadline, TimePoint now) {
    if (!deadline)
        return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now).count();
    return static_cast<int>(std::clamp<std::int64_t>(left, 0, 60'000));
}

bool readable(zmq::socket_t& socket) {
    return (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
}

// Where a topic's stream asks for replay: its pod's address at the fan-in's replay port.
std::string replay_endpoint_for(const std::string& pod, std::optional<int> port) {
    if (!port)
        return {};
    const bool ipv6 = pod.find(':') != std::string::npos;
    return "tcp://" + (ipv6 ? "[" + pod + "]" : pod) + ":" + std::to_string(*port);
}

}  // namespace

FleetLoop::FleetLoop(Settings settings, zmq::context_t& context, ReplayGate& gate)
    : settings_(settings),
      context_(context),
      gate_(gate),
      epoll_fd_(checked_fd(epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
      wake_fd_(checked_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), "eventfd")) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeToken;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
        ::close(wake_fd_);
        ::close(epoll_fd_);
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
    std::promise<void> started;
    auto running = started.get_future();
    thread_ = std::thread([this, &started] {
        thread_id_ = std::this_thread::get_id();
        pthread_setname_np(pthread_self(), ("kvev-loop" + std::to_string(settings_.index)).c_str());
        started.set_value();
        run();
    });
    running.wait();
}

FleetLoop::~FleetLoop() {
    post([this] {
        for (auto& member : members_) close_member(*member);
        members_.clear();
        stopping_ = true;
    });
    thread_.join();
    ::close(wake_fd_);
    ::close(epoll_fd_);
}

void FleetLoop::post(std::function<void()> command) {
    {
        std::lock_guard<std::mutex> lock(commands_mu_);
        commands_.push_back(std::move(command));
    }
    const std::uint64_t one = 1;
    // The counter cannot be full; a failed write would only delay the command to the next wake.
    [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
}

void FleetLoop::run_and_wait(std::function<void()> command) {
    // The command and its result are owned by the posted task, not by this frame: the caller
    // returns (and unwinds) as soon as the result is set, while the task may still be finishing.
    // Only the error's message crosses threads, never the exception object.
    auto done = std::make_shared<std::promise<std::optional<std::string>>>();
    auto result = done->get_future();
    post([command = std::move(command), done] {
        std::optional<std::string> error;
        try {
            command();
        } catch (const std::exception& e) {
            error = e.what();
        } catch (...) {
            error = "non-exception thrown";
        }
        done->set_value(std::move(error));
    });
    if (const std::optional<std::string> error = result.get())
        throw std::runtime_error(*error);
}

void FleetLoop::run_commands() {
    std::deque<std::function<void()>> batch;
    {
        std::lock_guard<std::mutex> lock(commands_mu_);
        batch.swap(commands_);
    }
    for (auto& command : batch) command();
    // A command may have started or ended replays and streams: look at every timer again.
    if (!batch.empty())
        next_check_ = StreamClock::now();
}

void FleetLoop::run() {
    std::vector<epoll_event> events(kMaxEventsPerWait);
    while (!stopping_) {
        const auto now = StreamClock::now();
        const int wait_ms = ready_.empty() ? timeout_ms(next_check_, now) : 0;
        const int n = epoll_wait(epoll_fd_, events.data(), kMaxEventsPerWait, wait_ms);
        if (n < 0 && errno != EINTR)
            throw std::system_error(errno, std::generic_category(), "epoll_wait");
        ++wakeups_;
        for (int i = 0; i < n; ++i) {
            const std::uint64_t token = events[static_cast<std::size_t>(i)].data.u64;
            if (token == kWakeToken) {
                std::uint64_t count = 0;
                [[maybe_unused]] const auto got = ::read(wake_fd_, &count, sizeof count);
            } else {
                mark_ready(token, events[static_cast<std::size_t>(i)].events);
            }
        }
        run_commands();
        // What the wait saw as silent was silent up to now: timers judge by this instant.
        const auto woke = StreamClock::now();
        serve_ready(woke);
        if (next_check_ && woke >= *next_check_)
            run_timers(woke);
    }
}

void FleetLoop::watch(std::uint64_t token, Watch w) {
    const int fd = w.socket->get(zmq::sockopt::fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    watches_.emplace(token, w);
    // Messages may already be queued, and ZMQ_FD only signals changes: look once.
    mark_ready(token);
}

bool FleetLoop::set_tcp_interest(std::uint64_t token, int fd, std::uint32_t events) {
    const auto it = watches_.find(token);
    if (it == watches_.end())
        return true;  // the member is closing: closing the descriptor takes it out of epoll
    Watch& w = it->second;
    if (events == 0) {
        if (w.fd >= 0)
            epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr);
        w.fd = -1;
        w.fired = 0;
        return true;
    }
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    const int op = w.fd == fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (op == EPOLL_CTL_ADD && w.fd >= 0)
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr);
    if (epoll_ctl(epoll_fd_, op, fd, &ev) != 0) {
        // Out of kernel memory or epoll watches: the connection fails and is dialled again.
        w.fd = -1;
        return false;
    }
    w.fd = fd;
    return true;
}

void FleetLoop::unwatch(std::uint64_t token) {
    const auto it = watches_.find(token);
    if (it == watches_.end())
        return;
    const int fd = it->second.socket->get(zmq::sockopt::fd);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    watches_.erase(it);  // a stale token left on ready_ is skipped
}

void FleetLoop::mark_ready(std::uint64_t token, std::uint32_t fired) {
    const auto it = watches_.find(token);
    if (it == watches_.end())
        return;
    it->second.fired |= fired;
    if (it->second.queued)
        return;
    it->second.queued = true;
    ready_.push_back(token);
}

void FleetLoop::serve_ready(TimePoint now) {
    std::vector<std::uint64_t> tokens;
    tokens.swap(ready_);
    for (const std::uint64_t token : tokens) {
        auto it = watches_.find(token);
        if (it == watches_.end())
            continue;
        it->second.queued = false;
        const bool tcp = it->second.role == Role::kTcp;
        Watch w = it->second;
        it->second.fired = 0;
        try {
            // A TCP connection is watched level-triggered: epoll reports it again while bytes
            // wait. ZMQ_FD only signals changes, so a libzmq socket is asked.
            if (tcp || readable(*w.socket))
                serve(w, now);
        } catch (const zmq::error_t& e) {
            member_failed(*w.member, e.num() == ETERM
                                         ? std::string("the ZeroMQ context being shut down")
                                         : std::string("transport error: ") + e.what());
            continue;
        } catch (const std::bad_alloc&) {
            // Out of memory for something small: the message being handled is lost, which
            // shows as a gap, and the loop goes on.
            if (w.member->stream)
                w.member->stream->count_decode_error();
        }
        // The socket may have been closed by what it delivered (a replay ended).
        it = watches_.find(token);
        if (!tcp && it != watches_.end() && readable(*it->second.socket))
            mark_ready(token);
    }
}

void FleetLoop::serve(Watch& w, TimePoint now) {
    FleetMember& member = *w.member;
    if (member.stop)
        return;
    switch (w.role) {
        case Role::kLive:
            member.subscription->drain_live(now);
            break;
        case Role::kMonitor:
            member.subscription->drain_monitor();
            break;
        case Role::kReplay:
            w.stream->drain_replay();
            break;
        case Role::kTcp:
            member.direct->on_io(w.fired, now);
            break;
    }
    settle_after_drain(member, w.stream);
}

void FleetLoop::settle_after_drain(FleetMember& member, PublisherStream* replayed) {
    // Only the streams a drain reached can have new deadlines or counts: with a fan-in socket of
    // thousands of topics, visiting every stream after each drain would dominate the loop.
    const auto settle = [this](PublisherStream& s) {
        fold_deadline(s.next_deadline());
        s.flush_loop_stats();
    };
    fold_deadline(member.live_deadline());
    settle(*member.stream);
    if (replayed != nullptr && replayed != member.stream.get())
        settle(*replayed);
    if (member.demux)
        member.demux->drain_touched(settle);
}

template <class F>
void FleetLoop::for_each_stream(FleetMember& member, F&& f) {
    if (member.stream)
        f(*member.stream);
    for (auto& s : member.topic_streams) f(*s);
}

void FleetLoop::fold_deadline(std::optional<TimePoint> at) {
    next_check_ = earliest(next_check_, at);
}

void FleetLoop::fold_member_deadlines(const FleetMember& member) {
    fold_deadline(member.live_deadline());
    if (member.stream)
        fold_deadline(member.stream->next_deadline());
    for (const auto& s : member.topic_streams) fold_deadline(s->next_deadline());
}

void FleetLoop::run_timers(TimePoint now) {
    next_check_.reset();
    for (auto& member : members_) {
        if (member->stop)
            continue;
        try {
            member->live_tick(now);
            for_each_stream(*member, [now](PublisherStream& s) {
                s.on_tick(now);
                s.flush_loop_stats();
            });
        } catch (const zmq::error_t& e) {
            member_failed(*member, std::string("transport error: ") + e.what());
            continue;
        } catch (const std::bad_alloc&) {
            if (member->stream)
                member->stream->count_decode_error();
        }
        fold_member_deadlines(*member);
    }
}

// --- members ----------------------------------------------------------------------------------

void FleetLoop::attach(const std::shared_ptr<FleetMember>& member) {
    FleetMember& m = *member;
    m.loop = this;
    const auto now = StreamClock::now();
    {
        std::lock_guard<std::mutex> lock(m.mu);
        ClientOptions stream_options = m.options;
        if (m.fan_in()) {
            // The socket's own stream carries its notices; it has no sequence to follow.
            stream_options.start_sequence = std::nullopt;
            m.stream = std::make_unique<PublisherStream>(stream_options, std::string(), m.handler,
                                                         m.log, context_, *this);
            m.stream->mark_socket_only();
        } else {
            m.stream = std::make_unique<PublisherStream>(stream_options, m.endpoints.replay,
                                                         m.handler, m.log, context_, *this);
        }
    }
    LiveSink* sink = m.stream.get();
    std::unique_ptr<FanInDemux> demux;
    std::unique_ptr<LiveSubscription> subscription;
    if (m.fan_in()) {
        demux = std::make_unique<FanInDemux>(*m.stream, m.endpoints.live,
                                             [this, &m](std::string_view topic, TimePoint at) {
                                                 return make_topic_stream(m, topic, at);
                                             });
        sink = demux.get();
    }
    std::unique_ptr<ZmtpSubscription> direct;
    const auto address = !m.fan_in() && settings_.read_tcp_directly
                             ? numeric_tcp_address(m.endpoints.live)
                             : std::nullopt;
    const std::uint64_t live = next_token_++;
    if (address) {
        direct = std::make_unique<ZmtpSubscription>(m.options, m.endpoints.live, *address, *sink,
                                                    m.log, m.stop, tcp_read_buffer_,
                                                    [this, live](int fd, std::uint32_t events) {
                                                        return set_tcp_interest(live, fd, events);
                                                    });
    } else {
        subscription = std::make_unique<LiveSubscription>(m.options, m.endpoints.live, *sink, m.log,
                                                          context_, m.stop);
        subscription->open(now);  // throws: the member is not attached
    }
    m.stream->check_replay_endpoint();
    {
        std::lock_guard<std::mutex> lock(m.mu);
        m.opened_endpoint = direct ? direct->opened_endpoint() : subscription->opened_endpoint();
        m.demux = std::move(demux);
        m.subscription = std::move(subscription);
        m.direct = std::move(direct);
    }
    m.log->info("[{}] {} {}{}{}", m.options.pod_key, m.fan_in() ? "fan-in bound" : "connecting to",
                m.opened_endpoint, m.direct ? " (ZMTP reader)" : "",
                m.endpoints.replay.empty() ? std::string() : ", replay " + m.endpoints.replay);
    if (m.direct) {
        watches_.emplace(live, Watch{Role::kTcp, &m, nullptr, nullptr});
    } else {
        const std::uint64_t monitor = next_token_++;
        watch(live, Watch{Role::kLive, &m, nullptr, m.subscription->live_socket()});
        watch(monitor, Watch{Role::kMonitor, &m, nullptr, m.subscription->monitor_socket()});
    }
    members_.push_back(member);
    ++member_count_;
    add_stream(m, *m.stream);
    m.stream->start(now);
    if (m.direct)
        m.direct->open(now);
    fold_member_deadlines(m);
}

void FleetLoop::detach(const std::shared_ptr<FleetMember>& member) {
    const auto it = std::find(members_.begin(), members_.end(), member);
    if (it == members_.end())
        return;
    close_member(*member);
    members_.erase(it);
    --member_count_;
}

void FleetLoop::close_member(FleetMember& member) {
    member.stop = true;
    for_each_stream(member, [this](PublisherStream& s) {
        s.stop_delivery();
        s.close();  // gives back its replay turn and closes its replay socket
        remove_stream(s);
    });
    for (auto it = watches_.begin(); it != watches_.end();) {
        if (it->second.member == &member) {
            const int fd = it->second.role == Role::kTcp ? it->second.fd
                                                         : it->second.socket->get(zmq::sockopt::fd);
            if (fd >= 0)
                epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
            it = watches_.erase(it);
        } else {
            ++it;
        }
    }
    member.close_live();
    for_each_stream(member, [](PublisherStream& s) { s.mark_stopped(); });
}

void FleetLoop::member_failed(FleetMember& member, const std::string& why) {
    if (member.stop)
        return;
    for_each_stream(member, [&why](PublisherStream& s) { s.fail(why, true); });
    close_member(member);
}

// --- streams and replay turns -----------------------------------------------------------------

void FleetLoop::add_stream(FleetMember& member, PublisherStream& stream) {
    const std::uint64_t id = next_stream_id();
    streams_.emplace(&stream, StreamEntry{&member, id, std::nullopt});
    streams_by_id_.emplace(id, &stream);
}

void FleetLoop::remove_stream(PublisherStream& stream) {
    const auto it = streams_.find(&stream);
    if (it == streams_.end())
        return;
    if (it->second.replay_watch)
        unwatch(*it->second.replay_watch);
    streams_by_id_.erase(it->second.id);
    streams_.erase(it);
}

PublisherStream* FleetLoop::make_topic_stream(FleetMember& member,
                                              std::string_view topic,
                                              TimePoint now) {
    if (member.topic_streams.size() >= settings_.max_fan_in_streams)
        return nullptr;
    const FanInTopic parsed = parse_fan_in_topic(topic);
    ClientOptions options = member.options;
    options.pod_key = parsed.pod;
    if (parsed.model)
        options.model_name = *parsed.model;
    options.bind = false;
    auto stream = std::make_unique<PublisherStream>(
        options, replay_endpoint_for(parsed.pod, member.replay_port), member.handler, member.log,
        context_, *this);
    PublisherStream* made = stream.get();
    made->mark_behind_fan_in();
    {
        std::lock_guard<std::mutex> lock(member.mu);
        member.topic_streams.push_back(std::move(stream));
        member.topics.emplace_back(topic);
    }
    add_stream(member, *made);
    member.log->info("[{}] fan-in stream for topic '{}'{}", options.pod_key, topic,
                     member.replay_port ? ", replay " + made->replay_endpoint() : "");
    made->start(now);
    return made;
}

bool FleetLoop::take_replay_turn(PublisherStream& stream, std::uint64_t id) {
    return gate_.take(this, streams_.at(&stream).id, id);
}

void FleetLoop::give_back_replay_turn(PublisherStream& stream, std::uint64_t id) {
    const auto it = streams_.find(&stream);
    if (it == streams_.end())
        return;
    hand_on(gate_.give_back(it->second.id, id));
}

void FleetLoop::hand_on(std::optional<ReplayGate::Turn> turn) {
    if (!turn)
        return;
    FleetLoop* loop = turn->loop;
    const std::uint64_t stream_id = turn->stream;
    const std::uint64_t replay_id = turn->id;
    loop->post([loop, stream_id, replay_id] { loop->grant(stream_id, replay_id); });
}

void FleetLoop::grant(std::uint64_t stream_id, std::uint64_t replay_id) {
    const auto it = streams_by_id_.find(stream_id);
    if (it == streams_by_id_.end()) {
        // The stream went away while its turn was on the way: pass the turn on.
        hand_on(gate_.give_back(stream_id, replay_id));
        return;
    }
    PublisherStream& stream = *it->second;
    try {
        stream.replay_turn_granted(replay_id, StreamClock::now());
    } catch (const zmq::error_t& e) {
        member_failed(*streams_.at(&stream).member, std::string("transport error: ") + e.what());
    }
}

void FleetLoop::replay_socket_opened(PublisherStream& stream) {
    StreamEntry& entry = streams_.at(&stream);
    const std::uint64_t token = next_token_++;
    watch(token, Watch{Role::kReplay, entry.member, &stream, stream.replay_socket()});
    entry.replay_watch = token;
}

void FleetLoop::replay_socket_closing(PublisherStream& stream) {
    const auto it = streams_.find(&stream);
    if (it == streams_.end() || !it->second.replay_watch)
        return;
    unwatch(*it->second.replay_watch);
    it->second.replay_watch.reset();
}

}  // namespace kvevents::detail

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.hpp>

#include <kvevents/decode.h>
#include <kvevents/zmq_client.h>

#include "endpoint_syntax.h"
#include "live_subscription.h"
#include "logger_or_silent.h"
#include "publisher_stream.h"
#include "zmq_context_access.h"

namespace kvevents {

const char* to_string(ConnectionState state) {
    switch (state) {
        case ConnectionState::kConnecting:
            return "connecting";
        case ConnectionState::kConnected:
            return "connected";
        case ConnectionState::kDisconnected:
            return "disconnected";
        case ConnectionState::kStopped:
            return "stopped";
        case ConnectionState::kFailed:
            return "failed";
    }
    return "unknown";
}

const char* to_string(StreamNotice::Kind kind) {
    switch (kind) {
        case StreamNotice::Kind::kPublisherRestarted:
            return "publisher_restarted";
        case StreamNotice::Kind::kUnrecoverableGap:
            return "unrecoverable_gap";
        case StreamNotice::Kind::kContinuityLost:
            return "continuity_lost";
        case StreamNotice::Kind::kDecodeError:
            return "decode_error";
        case StreamNotice::Kind::kConnectionChanged:
            return "connection_changed";
        case StreamNotice::Kind::kHandlerError:
            return "handler_error";
        case StreamNotice::Kind::kNotConnected:
            return "not_connected";
        case StreamNotice::Kind::kHashesMatch:
            return "hashes_match";
        case StreamNotice::Kind::kHashMismatch:
            return "hash_mismatch";
        case StreamNotice::Kind::kReady:
            return "ready";
    }
    return "unknown";
}

namespace {

using Clock = detail::StreamClock;
using std::chrono::milliseconds;

// Stop() wakes the loop through this, so the loop can wait with no timeout when no timer is due
// (an idle client costs no wake-ups) and a shared context need not be shut down to stop one.
class WakeSignal {
public:
    WakeSignal() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (fd_ < 0)
            throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    ~WakeSignal() { ::close(fd_); }
    WakeSignal(const WakeSignal&) = delete;
    WakeSignal& operator=(const WakeSignal&) = delete;

    int fd() const { return fd_; }
    void raise() const {
        const std::uint64_t one = 1;
        // The counter cannot be full here; a failed write would only leave the loop to its next
        // wake-up.
        [[maybe_unused]] const auto written = ::write(fd_, &one, sizeof one);
    }

private:
    const int fd_;
};

// A client's own context holds its few sockets; only a shared one needs a large socket table.
std::shared_ptr<ZmqContext> private_context() {
    ZmqContextOptions options;
    options.max_sockets = 64;
    return std::make_shared<ZmqContext>(options);
}

// -1 (wait until a socket or Stop() wakes the loop) unless a timer is due.
milliseconds timeout_until(std::optional<Clock::time_point> deadline, Clock::time_point now) {
    if (!deadline)
        return milliseconds(-1);
    return std::max(std::chrono::ceil<milliseconds>(*deadline - now), milliseconds(0));
}

}  // namespace

// One publisher on a thread of its own: a LiveSubscription feeding one PublisherStream.
struct ZmqClient::Impl {
    Impl(ClientOptions opts, EventHandler& handler)
        : options((validate(opts), std::move(opts))),
          endpoints(resolve_endpoints(options)),
          log(detail::logger_or_silent(options.logger)),
          context_owner(options.context ? options.context : private_context()),
          stream(options,
                 endpoints.replay,
                 handler,
                 log,
                 detail::ZmqContextAccess::context(*context_owner),
                 host),
          subscription(options,
                       endpoints.live,
                       stream,
                       log,
                       detail::ZmqContextAccess::context(*context_owner),
                       stop_requested) {}

    const ClientOptions options;
    const ResolvedEndpoints endpoints;
    const std::shared_ptr<spdlog::logger> log;
    const std::shared_ptr<ZmqContext> context_owner;
    const WakeSignal wake;
    detail::StreamHost host;  // every replay may run at once: the client has its own thread

    std::mutex lifecycle_mu;  // Start/Stop from callers
    std::thread thread;
    std::atomic<bool> started{false};
    std::atomic<bool> stop_requested{false};
    std::atomic<std::thread::id> loop_thread{};

    mutable std::mutex endpoint_mu;
    std::string opened_endpoint;  // guarded by endpoint_mu

    detail::PublisherStream stream;
    detail::LiveSubscription subscription;

    void open_sockets() {
        subscription.open(Clock::now());
        stream.check_replay_endpoint();
        {
            std::lock_guard<std::mutex> lock(endpoint_mu);
            opened_endpoint = subscription.opened_endpoint();
        }
        log->info("[{}] {} {}{}", options.pod_key, options.bind ? "bound" : "connecting to",
                  endpoints.live,
                  endpoints.replay.empty() ? " (replay off)" : ", replay " + endpoints.replay);
    }

    std::optional<Clock::time_point> next_deadline() const {
        return detail::earliest(stream.next_deadline(), subscription.next_deadline());
    }

    void loop() {
        std::vector<zmq::pollitem_t> items;
        while (!stop_requested) {
            items.clear();
            items.push_back({subscription.live_socket()->handle(), 0, ZMQ_POLLIN, 0});
            items.push_back({subscription.monitor_socket()->handle(), 0, ZMQ_POLLIN, 0});
            items.push_back({nullptr, wake.fd(), ZMQ_POLLIN, 0});
            if (auto* replay = stream.replay_socket())
                items.push_back({replay->handle(), 0, ZMQ_POLLIN, 0});
            try {
                zmq::poll(items.data(), items.size(), timeout_until(next_deadline(), Clock::now()));
            } catch (const zmq::error_t& e) {
                if (e.num() != EINTR)
                    throw;
                continue;  // a signal (a profiler, a debugger, SIGCHLD) interrupted the wait
            }
            // What the poll saw as silent was silent up to now: timers judge by this instant,
            // not by the end of the handler calls below.
            const auto woke = Clock::now();
            stream.count_wakeup();
            if ((items[2].revents & ZMQ_POLLIN) != 0)
                continue;  // Stop(): the loop condition ends it
            try {
                if ((items[1].revents & ZMQ_POLLIN) != 0)
                    subscription.drain_monitor();
                if (items.size() > 3 && stream.replay_socket() &&
                    (items[3].revents & ZMQ_POLLIN) != 0)
                    stream.drain_replay();
                if ((items[0].revents & ZMQ_POLLIN) != 0)
                    subscription.drain_live(woke);
                subscription.on_tick(woke);
                stream.on_tick(woke);
                stream.flush_loop_stats();  // what no batch took along
            } catch (const std::bad_alloc&) {
                // Out of memory for something small (a log line, a notice, a held batch's
                // slot): the message being handled is lost, which shows as a gap, and the loop
                // goes on rather than stop the client for good.
                stream.count_decode_error();
            }
        }
    }

    // The loop cannot go on: say so (running() turns false) rather than go quiet.
    void died(const std::string& why) {
        const bool was_stopping = stop_requested.exchange(true);
        stream.fail(why, !was_stopping);
    }

    // Sockets are opened on the loop thread (they never leave it); `opened` tells Start() whether
    // the endpoints were usable, so a bad address fails the caller rather than the log.
    void run(std::promise<void> opened) noexcept {
        loop_thread = std::this_thread::get_id();
        // Named for top -H, perf and gdb: "kvev:" plus the start of the pod key (15 chars max).
        pthread_setname_np(pthread_self(), ("kvev:" + options.pod_key.substr(0, 10)).c_str());
        try {
            try {
                open_sockets();
            } catch (...) {
                subscription.close();
                opened.set_exception(std::current_exception());
                return;
            }
            opened.set_value();
            stream.start(Clock::now());
            loop();
        } catch (const zmq::error_t& e) {
            // Stop() never shuts a context down, so ETERM means its owner did.
            died(e.num() == ETERM ? std::string("the ZeroMQ context being shut down")
                                  : std::string("transport error: ") + e.what());
        } catch (const std::exception& e) {
            died(std::string("unexpected error: ") + e.what());
        } catch (...) {
            died("unexpected non-exception error");
        }
        stream.close();
        subscription.close();
        stream.mark_stopped();  // also adds the last wake-ups and bytes
        log->info("[{}] stopped", options.pod_key);
    }
};

ZmqClient::ZmqClient(ClientOptions options, EventHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

ZmqClient::~ZmqClient() {
    Stop();
}

void ZmqClient::Start() {
    // Before the lock: the lookup may take the resolver's timeout, and Stop() must not wait.
    detail::warn_if_unresolvable(impl_->endpoints, impl_->options.bind, impl_->options.pod_key,
                                 *impl_->log);
    std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
    if (impl_->started) {
        throw std::logic_error("ZmqClient::Start called twice");
    }
    impl_->started = true;
    std::promise<void> opened;
    std::future<void> result = opened.get_future();
    impl_->thread = std::thread([impl = impl_.get(), opened = std::move(opened)]() mutable {
        impl->run(std::move(opened));
    });
    try {
        result.get();
    } catch (const std::exception& e) {
        impl_->thread.join();
        impl_->stop_requested = true;
        throw std::runtime_error(
            "ZmqClient '" + impl_->options.pod_key + "': cannot open " + impl_->endpoints.live +
            (impl_->endpoints.replay.empty() ? std::string()
                                             : " / replay " + impl_->endpoints.replay) +
            ": " + e.what());
    }
}

void ZmqClient::Stop() {
    impl_->stop_requested = true;
    impl_->stream.stop_delivery();
    if (impl_->loop_thread.load() == std::this_thread::get_id()) {
        return;  // from inside the handler: the loop exits when the handler returns
    }
    std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
    if (impl_->thread.joinable()) {
        impl_->wake.raise();
        impl_->thread.join();
    }
    impl_->stream.mark_stopped();
}

bool ZmqClient::running() const {
    return impl_->started && !impl_->stop_requested;
}

ClientStats ZmqClient::stats() const {
    return impl_->stream.stats();
}

std::string ZmqClient::live_endpoint() const {
    std::lock_guard<std::mutex> lock(impl_->endpoint_mu);
    return impl_->opened_endpoint;
}

const ClientOptions& ZmqClient::options() const {
    return impl_->options;
}

}  // namespace kvevents

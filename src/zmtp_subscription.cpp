#include "zmtp_subscription.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "live_subscription.h"
#include "wire_frames.h"
#include "zmq_receive.h"

namespace kvevents::detail {

namespace {

// Full reads per turn before loop-mates get theirs; more still waiting means a backlog.
constexpr int kMaxReadsPerTurn = 4;
// Dialling and the handshake together; libzmq's ZMQ_HANDSHAKE_IVL default.
constexpr std::chrono::seconds kHandshakeTimeout{30};
// Output is only the handshake and heartbeats: this much unsent means the peer reads nothing.
constexpr std::size_t kMaxUnsent = 64 * 1024;
constexpr std::size_t kLiveFrames = 3;

void set_int_option(int fd, int level, int name, int value) {
    // A failed option leaves the kernel's default, which works: not worth failing the dial.
    [[maybe_unused]] const int rc = ::setsockopt(fd, level, name, &value, sizeof value);
}

std::string describe_errno(int error) {
    return std::strerror(error);
}

}  // namespace

ZmtpSubscription::ZmtpSubscription(const ClientOptions& options,
                                   std::string endpoint,
                                   TcpAddress address,
                                   LiveSink& sink,
                                   std::shared_ptr<spdlog::logger> log,
                                   const std::atomic<bool>& stop,
                                   std::vector<char>& read_buffer,
                                   InterestFn interest)
    : options_(settings_only(options)),
      endpoint_(std::move(endpoint)),
      address_(address),
      sink_(sink),
      log_(std::move(log)),
      stop_(stop),
      read_buffer_(read_buffer),
      interest_(std::move(interest)),
      reader_(options.max_message_size),
      backoff_(options.reconnect_interval) {}

ZmtpSubscription::~ZmtpSubscription() {
    close();
}

void ZmtpSubscription::open(TimePoint now) {
    if (options_.connect_warning_after.count() > 0)
        connect_warning_at_ = now + options_.connect_warning_after;
    dial(now);
}

void ZmtpSubscription::close() {
    close_socket();
    state_ = State::kWaiting;
    dial_at_.reset();
    handshake_deadline_.reset();
    connect_warning_at_.reset();
    next_ping_at_.reset();
    pong_deadline_.reset();
}

void ZmtpSubscription::close_socket() {
    if (fd_ < 0)
        return;
    interest_(fd_, 0);
    ::close(fd_);
    fd_ = -1;
    interest_events_ = 0;
    reader_.reset();
    out_.clear();
    failure_.reset();
}

void ZmtpSubscription::dial(TimePoint now) {
    dial_at_.reset();
    handshake_deadline_ = now + kHandshakeTimeout;
    const auto* address = reinterpret_cast<const sockaddr*>(&address_.storage);
    fd_ = ::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        // Out of descriptors, usually: a retry later may find one.
        connection_lost("cannot open a socket: " + describe_errno(errno), false, now);
        return;
    }
    set_int_option(fd_, IPPROTO_TCP, TCP_NODELAY, 1);
    if (options_.tcp_keepalive) {
        set_int_option(fd_, SOL_SOCKET, SO_KEEPALIVE, 1);
        set_int_option(fd_, IPPROTO_TCP, TCP_KEEPIDLE,
                       static_cast<int>(options_.tcp_keepalive_idle.count()));
        set_int_option(fd_, IPPROTO_TCP, TCP_KEEPINTVL,
                       static_cast<int>(options_.tcp_keepalive_interval.count()));
        set_int_option(fd_, IPPROTO_TCP, TCP_KEEPCNT, options_.tcp_keepalive_count);
    }
    if (::connect(fd_, address, address_.size) == 0) {
        connected(now);
        return;
    }
    if (errno != EINPROGRESS) {
        connection_lost(describe_errno(errno), false, now);
        return;
    }
    state_ = State::kConnecting;
    update_interest();
    settle_failure(now);
}

void ZmtpSubscription::connected(TimePoint now) {
    state_ = State::kHandshake;
    send(zmtp_greeting());
    settle_failure(now);
}

void ZmtpSubscription::on_greeting() {
    std::string hello = zmtp_command("READY", zmtp_ready_body("SUB"));
    // ZMTP 3.0 subscribes with a message: 1, then the topic prefix.
    hello += zmtp_message(std::string(1, '\x01') + options_.topic_filter);
    send(hello);
}

void ZmtpSubscription::update_interest() {
    if (fd_ < 0)
        return;
    const std::uint32_t wanted =
        state_ == State::kConnecting ? EPOLLOUT : EPOLLIN | (out_.empty() ? 0U : EPOLLOUT);
    if (wanted != interest_events_) {
        interest_events_ = wanted;
        if (!interest_(fd_, wanted))
            fail("cannot watch the connection: " + describe_errno(errno), false);
    }
}

void ZmtpSubscription::fail(std::string why, bool protocol_error) {
    if (!failure_)
        failure_ = Failure{std::move(why), protocol_error};
}

bool ZmtpSubscription::settle_failure(TimePoint now) {
    if (!failure_)
        return false;
    const Failure f = std::move(*std::exchange(failure_, std::nullopt));
    connection_lost(f.why, f.protocol_error, now);
    return true;
}

void ZmtpSubscription::send(std::string_view bytes) {
    if (failure_)
        return;
    if (out_.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            fail(describe_errno(errno), false);
            return;
        }
        bytes.remove_prefix(static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    }
    if (out_.size() + bytes.size() > kMaxUnsent) {
        fail("the publisher reads nothing we send", true);
        return;
    }
    out_.append(bytes);
    update_interest();
}

void ZmtpSubscription::flush() {
    while (!out_.empty()) {
        const ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fail(describe_errno(errno), false);
            return;
        }
        out_.erase(0, static_cast<std::size_t>(n));
    }
    update_interest();
}

void ZmtpSubscription::on_io(std::uint32_t events, TimePoint now) {
    now_ = now;
    if (fd_ < 0)
        return;
    if (state_ == State::kConnecting) {
        if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
            return;
        int error = 0;
        socklen_t size = sizeof error;
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size) != 0)
            error = errno;
        if (error != 0) {
            connection_lost(describe_errno(error), false, now);
        } else {
            connected(now);
        }
        return;
    }
    if ((events & EPOLLOUT) != 0) {
        flush();
        if (settle_failure(now))
            return;
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
        read(now);
}

void ZmtpSubscription::read(TimePoint now) {
    std::vector<char>& buffer = read_buffer_;
    for (int reads = 0; reads < kMaxReadsPerTurn; ++reads) {
        const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
        if (n == 0) {
            connection_lost("the publisher closed the connection", false, now);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                connection_lost(describe_errno(errno), false, now);
            return;
        }
        pong_deadline_.reset();
        std::optional<std::string> error;
        try {
            error =
                reader_.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), *this);
        } catch (const std::bad_alloc&) {
            error = "out of memory for a frame";
        } catch (const zmq::error_t& e) {
            if (e.num() != ENOMEM)
                throw;  // the shared context shut down (from a replay): the member fails
            error = std::string("out of memory for a frame: ") + e.what();
        }
        if (error) {
            failure_.reset();
            connection_lost(*error, true, now);
            return;
        }
        if (settle_failure(now))
            return;
        if (stop_ || fd_ < 0)
            return;
        if (static_cast<std::size_t>(n) < buffer.size())
            return;  // the kernel had no more; epoll says when it does
    }
    // Still more waiting after a full turn: behind, so the publisher may be dropping.
    sink_.on_backlog(StreamClock::now());
}

void ZmtpSubscription::on_command(std::string_view name, std::string_view body) {
    if (name == "READY") {
        if (state_ != State::kHandshake) {
            fail("a second READY command", true);
            return;
        }
        const auto type = zmtp_property(body, "Socket-Type");
        if (!type || (*type != "PUB" && *type != "XPUB")) {
            const std::string what = type ? std::string(*type) + " socket" : "peer without type";
            fail("the peer is a " + what + ", not a publisher (PUB)" +
                     (type && *type == "ROUTER" ? "; is this the replay port?" : ""),
                 true);
            return;
        }
        state_ = State::kStreaming;
        handshake_deadline_.reset();
        connect_warning_at_.reset();
        if (options_.heartbeat_interval.count() > 0)
            next_ping_at_ = now_ + options_.heartbeat_interval;
        sink_.on_connection(ConnectionState::kConnected, endpoint_);
    } else if (name == "ERROR") {
        const std::string_view reason =
            body.empty() ? body : body.substr(1, static_cast<unsigned char>(body[0]));
        fail("the publisher refused the connection: " + std::string(reason), true);
    } else if (name == "PING") {
        // Answered with its context, the bytes after the two of the TTL.
        send(zmtp_command("PONG", body.size() > 2 ? body.substr(2) : std::string_view()));
    } else if (state_ != State::kStreaming) {
        fail("a " + std::string(name) + " command before READY", true);
    }
    // Anything else (PONG, commands of later ZMTP versions) needs no answer.
}

void ZmtpSubscription::on_message(std::vector<zmq::message_t>& frames, std::size_t frame_count) {
    if (stop_)
        return;
    if (state_ != State::kStreaming) {
        fail("a message before the handshake ended", true);
        return;
    }
    // The publisher filters by topic; a peer that does not is filtered here, as libzmq does.
    const std::string_view topic = frames.front().to_string_view();
    if (topic.substr(0, options_.topic_filter.size()) != options_.topic_filter)
        return;
    if (frame_count != frames.size() || frame_count != kLiveFrames) {
        sink_.on_receive_error(std::nullopt, "a live message of " + std::to_string(frame_count) +
                                                 " frames; expected 3 (topic, sequence, payload)");
        return;
    }
    const ParsedFrames f = parse_live_frames(frame_views(frames, frame_views_));
    if (f.kind != ParsedFrames::Kind::kData) {
        sink_.on_receive_error(std::nullopt, f.error);
        return;
    }
    sink_.count_bytes(f.payload.size());
    // This connection works; a peer that accepts and then fails keeps its growing backoff.
    backoff_ = options_.reconnect_interval;
    sink_.on_live(RawBatch(f.sequence, std::move(frames.front()), std::move(frames.back()), false),
                  now_);
}

void ZmtpSubscription::connection_lost(const std::string& why, bool protocol_error, TimePoint now) {
    const bool was_streaming = state_ == State::kStreaming;
    close_socket();
    state_ = State::kWaiting;
    handshake_deadline_.reset();
    next_ping_at_.reset();
    pong_deadline_.reset();
    dial_at_ = now + backoff_;
    if (options_.reconnect_interval_max > options_.reconnect_interval)
        backoff_ = std::min(backoff_ * 2, options_.reconnect_interval_max);
    if (protocol_error) {
        sink_.on_receive_error(std::nullopt, "ZMTP error from " + endpoint_ + ": " + why);
    } else if (!was_streaming) {
        // A publisher not up yet is normal at start-up; the never-connected warning covers it.
        log_->debug("[{}] cannot connect to {}: {}", options_.pod_key, endpoint_, why);
    }
    if (was_streaming)
        sink_.on_connection(ConnectionState::kDisconnected, endpoint_);
}

// As libzmq does: the timeout runs from a PING sent, and any byte received ends it (an idle
// publisher answers the PING, so it is not dropped); a timeout of 0 never drops.
void ZmtpSubscription::heartbeat(TimePoint now) {
    if (pong_deadline_ && now >= *pong_deadline_) {
        connection_lost("no answer to a heartbeat in " +
                            std::to_string(options_.heartbeat_timeout.count()) + " ms",
                        false, now);
        return;
    }
    if (!next_ping_at_ || now < *next_ping_at_)
        return;
    next_ping_at_ = now + options_.heartbeat_interval;
    if (!pong_deadline_ && options_.heartbeat_timeout.count() > 0)
        pong_deadline_ = now + options_.heartbeat_timeout;
    // TTL 0: the publisher keeps the connection however long our pings take.
    send(zmtp_command("PING", std::string(2, '\0')));
}

std::optional<TimePoint> ZmtpSubscription::next_deadline() const {
    return earliest(earliest(dial_at_, handshake_deadline_),
                    earliest(earliest(connect_warning_at_, next_ping_at_), pong_deadline_));
}

void ZmtpSubscription::on_tick(TimePoint now) {
    now_ = now;
    if (dial_at_ && now >= *dial_at_) {
        log_->debug("[{}] dialling {} again", options_.pod_key, endpoint_);
        dial(now);
    }
    if (handshake_deadline_ && now >= *handshake_deadline_)
        connection_lost("no ZMTP handshake within 30 s", state_ == State::kHandshake, now);
    heartbeat(now);
    settle_failure(now);
    if (connect_warning_at_ && now >= *connect_warning_at_) {
        connect_warning_at_.reset();
        sink_.on_not_connected(not_connected_detail(options_, endpoint_));
    }
}

}  // namespace kvevents::detail

#pragma once

// The live side of following one publisher at a numeric TCP address, read by kvevents itself:
// a non-blocking TCP connection speaking ZMTP 3 as a SUB peer, on the fleet's loop thread. With a
// libzmq SUB socket, each batch costs an I/O-thread hop through a pipe and a mailbox (about ten
// system calls, and 30-40 KiB of pipe chunks per publisher under traffic); here it costs one
// recv(), and an idle publisher costs a descriptor and a few hundred bytes. It feeds the same
// LiveSink as LiveSubscription, with the same connection events, reconnect backoff and
// never-connected warning. There is no receive queue: a consumer that falls behind leaves the
// bytes in the kernel, and the publisher's own high-water mark decides what it drops (a gap,
// healed by replay).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>

#include <kvevents/client_options.h>

#include "endpoint_syntax.h"
#include "publisher_stream.h"
#include "zmtp_reader.h"

namespace kvevents::detail {

class ZmtpSubscription final : private ZmtpReaderSink {
public:
    /// Told the descriptor to wait on and for what (EPOLLIN, EPOLLOUT); events 0: stop waiting on
    /// it (it is about to be closed). False (errno set): it cannot be watched.
    using InterestFn = std::function<bool(int fd, std::uint32_t events)>;
    /// What a loop's connections read into, one after another: each keeps only the part of a
    /// frame still incomplete.
    static constexpr std::size_t kReadBufferSize = 64 * 1024;

    ZmtpSubscription(const ClientOptions& options,
                     std::string endpoint,
                     TcpAddress address,
                     LiveSink& sink,
                     std::shared_ptr<spdlog::logger> log,
                     const std::atomic<bool>& stop,
                     std::vector<char>& read_buffer,
                     InterestFn interest);
    ~ZmtpSubscription() override;
    ZmtpSubscription(const ZmtpSubscription&) = delete;
    ZmtpSubscription& operator=(const ZmtpSubscription&) = delete;

    /// Dials at once; failures are retried with the reconnect backoff, never thrown.
    void open(TimePoint now);
    void close();

    const std::string& opened_endpoint() const { return endpoint_; }

    /// The descriptor is ready for `events` (epoll's).
    void on_io(std::uint32_t events, TimePoint now);
    std::optional<TimePoint> next_deadline() const;
    void on_tick(TimePoint now);

private:
    enum class State : std::uint8_t { kWaiting, kConnecting, kHandshake, kStreaming };

    void dial(TimePoint now);
    void connected(TimePoint now);
    void read(TimePoint now);
    void send(std::string_view bytes);
    void flush();
    void update_interest();
    void close_socket();
    /// Closes the connection and schedules the next dial. `protocol_error`: the peer sent
    /// something wrong (counted and warned), rather than the connection failing or ending.
    void connection_lost(const std::string& why, bool protocol_error, TimePoint now);
    void heartbeat(TimePoint now);
    void fail(std::string why, bool protocol_error);
    /// Ends the connection if something failed; true if so.
    bool settle_failure(TimePoint now);

    // ZmtpReaderSink
    void on_greeting() override;
    void on_command(std::string_view name, std::string_view body) override;
    void on_message(std::vector<zmq::message_t>& frames, std::size_t frame_count) override;

    const ClientOptions options_;
    const std::string endpoint_;
    const TcpAddress address_;
    LiveSink& sink_;
    const std::shared_ptr<spdlog::logger> log_;
    const std::atomic<bool>& stop_;
    std::vector<char>& read_buffer_;  // kReadBufferSize, shared with the loop's other connections
    const InterestFn interest_;

    State state_ = State::kWaiting;
    int fd_ = -1;
    std::uint32_t interest_events_ = 0;
    ZmtpReader reader_;
    std::string out_;  // handshake, subscription and heartbeat bytes not yet sent
    struct Failure {
        std::string why;
        bool protocol_error;
    };
    // Found while parsing or sending, where the connection cannot be closed under the caller.
    std::optional<Failure> failure_;
    TimePoint now_{};  // of the wake being served

    std::chrono::milliseconds backoff_;
    std::optional<TimePoint> dial_at_;
    std::optional<TimePoint> handshake_deadline_;
    std::optional<TimePoint> connect_warning_at_;
    std::optional<TimePoint> next_ping_at_;
    std::optional<TimePoint> pong_deadline_;  // a PING sent, nothing received since
    std::vector<std::string_view> frame_views_;
};

}  // namespace kvevents::detail

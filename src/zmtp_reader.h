#pragma once

// The subscriber's side of ZMTP 3 (the ZeroMQ wire protocol) over a byte stream, without a
// socket: the greeting, commands and multipart messages a publisher sends, parsed from whatever
// pieces the stream arrives in, and the bytes a SUB peer sends. The fleet reads its publishers'
// TCP connections with it directly, instead of through one libzmq socket, pipe and mailbox each.
//
// Everything here comes from the wire, so sizes are checked before anything is kept: a frame is
// allocated only once its bytes have arrived (or grown as they arrive), never from its header.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

namespace kvevents::detail {

class ZmtpReaderSink {
public:
    virtual ~ZmtpReaderSink() = default;
    /// The peer's greeting has arrived and is acceptable: time to send READY. (libzmq drops a
    /// peer whose READY comes before its own greeting is out.)
    virtual void on_greeting() = 0;
    /// A command frame: READY, ERROR, PING... `body` is what follows the name.
    virtual void on_command(std::string_view name, std::string_view body) = 0;
    /// A whole message. At most ZmtpReader::kMaxKeptFrames frames are kept; `frame_count` says
    /// how many there were.
    virtual void on_message(std::vector<zmq::message_t>& frames, std::size_t frame_count) = 0;
};

class ZmtpReader {
public:
    static constexpr std::size_t kGreetingSize = 64;
    static constexpr std::size_t kMaxKeptFrames = 4;
    static constexpr std::size_t kMaxCommandSize = 4096;

    /// `max_frame_size` < 0: no limit on a message frame.
    explicit ZmtpReader(std::int64_t max_frame_size) : max_frame_size_(max_frame_size) {}

    /// Takes the next bytes of the stream. Nullopt, or the protocol error that ends the
    /// connection (the reader must be reset before it is fed again).
    std::optional<std::string> feed(std::string_view bytes, ZmtpReaderSink& sink);
    /// For a new connection.
    void reset();

private:
    enum class Phase : std::uint8_t { kGreeting, kFrameHeader, kFrameBody };

    std::optional<std::string> take_greeting(std::string_view& bytes, ZmtpReaderSink& sink);
    std::optional<std::string> take_header(std::string_view& bytes);
    std::optional<std::string> frame_complete(std::string_view body, ZmtpReaderSink& sink);
    static std::optional<std::string> command(std::string_view body, ZmtpReaderSink& sink);

    const std::int64_t max_frame_size_;
    Phase phase_ = Phase::kGreeting;
    std::string partial_;  // greeting, header or body bytes so far, when split across reads
    std::uint8_t flags_ = 0;
    std::uint64_t frame_size_ = 0;
    std::vector<zmq::message_t> frames_;
    std::size_t frame_count_ = 0;
};

/// A ZMTP 3 greeting for the NULL mechanism, as a client. Version 3.0, so that a publisher of
/// any ZMTP 3 version takes subscriptions as messages.
std::string zmtp_greeting();
/// A command frame.
std::string zmtp_command(std::string_view name, std::string_view body);
/// The body of a READY command with one property, Socket-Type.
std::string zmtp_ready_body(std::string_view socket_type);
/// A single-frame message.
std::string zmtp_message(std::string_view body);
/// The value of property `name` in a READY body; nullopt when absent or the body is malformed.
std::optional<std::string_view> zmtp_property(std::string_view ready_body, std::string_view name);

}  // namespace kvevents::detail

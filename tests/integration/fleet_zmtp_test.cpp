// The fleet's own ZMTP reader against real libzmq peers and a scripted TCP peer: heartbeats both
// ways, a peer that is not a publisher, a frame over max_message_size, a publisher that comes back
// on its ports, and an IPv6 address. (The fleet's other tests run on both read paths.)

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.hpp>

#include <kvevents/fleet.h>
#include <kvevents/testing/encoder.h>
#include <kvevents/testing/mock_publisher.h>

#include "client_fixtures.h"
#include "wire_frames.h"
#include "zmtp_reader.h"

namespace kvevents::test {
namespace {

using namespace std::chrono_literals;
using Kind = StreamNotice::Kind;

FleetOptions direct_fleet() {
    FleetOptions o;
    o.loop_threads = 1;
    o.planned_publishers = 4;
    o.read_tcp_directly = true;
    return o;
}

ClientOptions live_only(const std::string& endpoint) {
    ClientOptions o;
    o.pod_key = "pod-a";
    o.endpoint = endpoint;
    o.replay_enabled = false;
    o.start_sequence = std::nullopt;
    o.reconnect_interval = 20ms;
    o.reconnect_interval_max = 100ms;
    return o;
}

bool has_notice_with(const RecordingHandler& h, Kind kind, const std::string& text) {
    for (const auto& n : h.notices())
        if (n.kind == kind && n.detail.find(text) != std::string::npos)
            return true;
    return false;
}

// A TCP peer that says only what the test scripts: once it has the subscriber's greeting it
// writes `reply`, then reads and discards until the subscriber goes, and takes the next one.
class ScriptedPeer {
public:
    explicit ScriptedPeer(std::string reply) : reply_(std::move(reply)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        if (listen_fd_ < 0 ||
            ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
            ::listen(listen_fd_, 4) != 0 ||
            ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0)
            throw std::runtime_error("ScriptedPeer: cannot listen");
        endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedPeer() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }
    ScriptedPeer(const ScriptedPeer&) = delete;
    ScriptedPeer& operator=(const ScriptedPeer&) = delete;

    const std::string& endpoint() const { return endpoint_; }
    int connections() const { return connections_; }
    /// Everything the subscriber sent on the current or last connection.
    std::string received() const {
        std::lock_guard<std::mutex> lock(mu_);
        return received_;
    }

private:
    // Waits for `fd` to be readable, giving up when the peer is being destroyed.
    bool readable(int fd) const {
        while (!stop_) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 20) > 0)
                return true;
        }
        return false;
    }
    void serve() {
        while (readable(listen_fd_)) {
            const int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0)
                continue;
            ++connections_;
            {
                std::lock_guard<std::mutex> lock(mu_);
                received_.clear();
            }
            char buffer[256];
            std::size_t greeting = 0;
            bool replied = false;
            while (readable(fd)) {
                const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
                if (n <= 0)
                    break;
                {
                    std::lock_guard<std::mutex> lock(mu_);
                    received_.append(buffer, static_cast<std::size_t>(n));
                }
                greeting += static_cast<std::size_t>(n);
                if (!replied && greeting >= detail::ZmtpReader::kGreetingSize) {
                    replied = true;
                    [[maybe_unused]] const auto sent =
                        ::send(fd, reply_.data(), reply_.size(), MSG_NOSIGNAL);
                }
            }
            ::close(fd);
        }
    }

    const std::string reply_;
    int listen_fd_ = -1;
    std::string endpoint_;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    mutable std::mutex mu_;
    std::string received_;  // guarded by mu_
    std::thread thread_;
};

std::string publisher_handshake() {
    std::string g = detail::zmtp_greeting();
    return g + detail::zmtp_command("READY", detail::zmtp_ready_body("PUB"));
}

// A libzmq socket of `type` bound to a free loopback port; its endpoint is the last one bound.
zmq::socket_t bound_socket(zmq::context_t& context, zmq::socket_type type) {
    zmq::socket_t socket(context, type);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind("tcp://127.0.0.1:*");
    return socket;
}

TEST(FleetZmtpReader, AnswersThePublishersHeartbeatsSoItsConnectionLasts) {
    zmq::context_t context;
    zmq::socket_t pub(context, zmq::socket_type::pub);
    pub.set(zmq::sockopt::linger, 0);
    pub.set(zmq::sockopt::heartbeat_ivl, 50);
    pub.set(zmq::sockopt::heartbeat_timeout, 200);
    pub.bind("tcp://127.0.0.1:*");
    RecordingHandler handler;
    Fleet fleet(direct_fleet(), handler);
    fleet.add(live_only(pub.get(zmq::sockopt::last_endpoint)));
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected));
    // Unanswered, libzmq would drop the connection 200 ms after its first ping.
    EXPECT_FALSE(handler.wait_for_state(ConnectionState::kDisconnected, 1, 800ms));
    const std::string payload = testing::encode_batch(one_store(7));
    pub.send(zmq::buffer(std::string()), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(detail::be_u64(0)), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(payload), zmq::send_flags::none);
    ASSERT_TRUE(handler.wait_for_batches(1));
    EXPECT_EQ(fleet.publisher("pod-a")->stats.reconnects, 0U);
}

TEST(FleetZmtpReader, AnswersAPingWithItsContext) {
    ScriptedPeer pinging(publisher_handshake() +
                         detail::zmtp_command("PING", std::string("\0\x0a", 2) + "ctx42"));
    RecordingHandler handler;
    Fleet fleet(direct_fleet(), handler);
    fleet.add(live_only(pinging.endpoint()));
    const std::string pong = detail::zmtp_command("PONG", "ctx42");
    ASSERT_TRUE(handler.wait_for([&pinging, &pong](const RecordingHandler&) {
        return pinging.received().find(pong) != std::string::npos;
    }));
}

TEST(FleetZmtpReader, ItsHeartbeatsKeepAnIdlePublisherEvenWithATimeoutBelowTheInterval) {
    zmq::context_t context;
    zmq::socket_t pub = bound_socket(context, zmq::socket_type::pub);
    RecordingHandler handler;
    Fleet fleet(direct_fleet(), handler);
    ClientOptions o = live_only(pub.get(zmq::sockopt::last_endpoint));
    o.heartbeat_interval = 100ms;
    o.heartbeat_timeout = 50ms;  // runs from each PING, and libzmq answers it
    fleet.add(o);
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected));
    EXPECT_FALSE(handler.wait_for_state(ConnectionState::kDisconnected, 1, 1s));
}

TEST(FleetZmtpReader, ItsOwnHeartbeatsDropAPeerThatFallsSilent) {
    ScriptedPeer silent(publisher_handshake());
    RecordingHandler handler;
    Fleet fleet(direct_fleet(), handler);
    ClientOptions o = live_only(silent.endpoint());
    o.heartbeat_interval = 50ms;
    o.heartbeat_timeout = 200ms;
    fleet.add(o);
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected));
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kDisconnected));
    // And it dials again.
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected, 2));
    EXPECT_GE(silent.connections(), 2);
}

TEST(FleetZmtpReader, APeerThatIsNotAPublisherIsNamedAndNeverCountsAsConnected) {
    zmq::context_t context;
    zmq::socket_t router = bound_socket(context, zmq::socket_type::router);
    RecordingHandler handler;
    CapturedLog log;
    FleetOptions options = direct_fleet();
    options.logger = log.logger;
    Fleet fleet(options, handler);
    fleet.add(live_only(router.get(zmq::sockopt::last_endpoint)));
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        return has_notice_with(
            h, Kind::kDecodeError,
            "is a ROUTER socket, not a publisher (PUB); is this the replay port?");
    }));
    EXPECT_EQ(handler.count(Kind::kConnectionChanged), 0U);
    EXPECT_EQ(fleet.publisher("pod-a")->stats.state, ConnectionState::kConnecting);
}

TEST(FleetZmtpReader, AGreetingWithSecurityIsRefusedByName) {
    std::string greeting = detail::zmtp_greeting();
    greeting.replace(12, 5, "CURVE");
    ScriptedPeer curve(greeting);
    RecordingHandler handler;
    Fleet fleet(direct_fleet(), handler);
    fleet.add(live_only(curve.endpoint()));
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        return has_notice_with(h, Kind::kDecodeError, "CURVE security mechanism");
    }));
}

TEST(FleetZmtpReader, AFrameOverMaxMessageSizeIsAnErrorAndTheStreamGoesOn) {
    testing::MockPublisherOptions po;
    po.report_every_subscription = true;
    testing::MockPublisher pub(po);
    RecordingHandler handler;
    Fleet fleet(direct_fleet(), handler);
    ClientOptions o = live_only(pub.endpoint());
    o.max_message_size = 4096;
    fleet.add(o);
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(1));
    pub.publish_payload(std::string(10000, '\x90'));
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        return has_notice_with(h, Kind::kDecodeError,
                               "a frame of 10000 bytes, more than max_message_size 4096");
    }));
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kConnected, 2));
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for_batches(2));
    EXPECT_EQ(handler.sequences().back(), 2U);
}

TEST(FleetZmtpReader, APublisherAtAnIpv6AddressIsReadDirectly) {
    testing::MockPublisherOptions po;
    po.endpoint = "tcp://[::1]:*";
    po.replay_endpoint = "tcp://[::1]:*";
    testing::MockPublisher pub(po);
    publish_n(pub, 3);  // history, fetched by the start-up replay
    RecordingHandler handler;
    Fleet fleet(direct_fleet(), handler);
    fleet.add(options_for(pub));
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    ASSERT_TRUE(handler.wait_for_notice(Kind::kReady));
    publish_n(pub, 3);
    ASSERT_TRUE(handler.wait_for_batches(6));
    EXPECT_EQ(handler.sequences(), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
}

}  // namespace
}  // namespace kvevents::test

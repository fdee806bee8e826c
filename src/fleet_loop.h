#pragma once

// One of a fleet's loop threads: it waits in epoll on the ZMQ_FD of every socket of the members
// pinned to it, and on an eventfd for commands (attach, detach, a replay turn granted). ZMQ_FD
// only says that a socket's state may have changed, so a socket that woke the loop is drained
// until ZMQ_EVENTS shows nothing more to read; one with more than a drain's worth stays on the
// ready list for the next pass, so loop-mates take turns.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>
#include <zmq.hpp>

#include "fleet_member.h"
#include "publisher_stream.h"
#include "replay_gate.h"

namespace kvevents::detail {

class FleetLoop final : public StreamHost {
public:
    struct Settings {
        std::size_t index = 0;
        std::size_t max_fan_in_streams = 4096;
        bool read_tcp_directly = true;
    };

    FleetLoop(Settings settings, zmq::context_t& context, ReplayGate& gate);
    /// Stops the thread (members still attached are closed first).
    ~FleetLoop() override;
    FleetLoop(const FleetLoop&) = delete;
    FleetLoop& operator=(const FleetLoop&) = delete;

    /// Runs `command` on the loop thread, in the order posted.
    void post(std::function<void()> command);
    /// Posts `command` and waits for it; if it throws, a std::runtime_error with the same message
    /// is thrown here.
    void run_and_wait(std::function<void()> command);
    bool on_loop_thread() const { return std::this_thread::get_id() == thread_id_.load(); }

    /// On the loop thread: opens the member's sockets (throws zmq::error_t when its endpoint is
    /// unusable) and starts its streams.
    void attach(const std::shared_ptr<FleetMember>& member);
    /// On the loop thread: stops delivery and closes the member's sockets.
    void detach(const std::shared_ptr<FleetMember>& member);

    std::size_t member_count() const { return member_count_; }
    std::uint64_t wakeups() const { return wakeups_; }

    // StreamHost
    bool take_replay_turn(PublisherStream& stream, std::uint64_t id) override;
    void give_back_replay_turn(PublisherStream& stream, std::uint64_t id) override;
    void replay_socket_opened(PublisherStream& stream) override;
    void replay_socket_closing(PublisherStream& stream) override;

private:
    enum class Role : std::uint8_t { kLive, kMonitor, kReplay, kTcp };
    struct Watch {
        Role role;
        FleetMember* member;
        PublisherStream* stream;  // kReplay
        zmq::socket_t* socket;    // not for kTcp
        bool queued = false;      // on ready_
        int fd = -1;              // kTcp: the connection's descriptor, while one is open
        std::uint32_t fired = 0;  // kTcp: what epoll reported since it was last served
    };
    struct StreamEntry {
        FleetMember* member;
        std::uint64_t id;  // the gate knows the stream by this
        std::optional<std::uint64_t> replay_watch;
    };

    void run();
    void run_commands();
    void watch(std::uint64_t token, Watch w);
    /// A kTcp watch's descriptor and events changed; events 0: the descriptor is about to close.
    /// False (errno set) when epoll cannot watch it.
    bool set_tcp_interest(std::uint64_t token, int fd, std::uint32_t events);
    void unwatch(std::uint64_t token);
    void mark_ready(std::uint64_t token, std::uint32_t fired = 0);
    void serve_ready(TimePoint now);
    void serve(Watch& w, TimePoint now);
    void run_timers(TimePoint now);
    void fold_deadline(std::optional<TimePoint> at);
    void fold_member_deadlines(const FleetMember& member);
    void settle_after_drain(FleetMember& member, PublisherStream* replayed);
    void add_stream(FleetMember& member, PublisherStream& stream);
    void remove_stream(PublisherStream& stream);
    PublisherStream* make_topic_stream(FleetMember& member, std::string_view topic, TimePoint now);
    void grant(std::uint64_t stream_id, std::uint64_t replay_id);
    /// Posts a turn the gate granted to the loop of its stream.
    static void hand_on(std::optional<ReplayGate::Turn> turn);
    void member_failed(FleetMember& member, const std::string& why);
    void close_member(FleetMember& member);
    template <class F>
    void for_each_stream(FleetMember& member, F&& f);

    const Settings settings_;
    zmq::context_t& context_;
    ReplayGate& gate_;
    const int epoll_fd_;
    const int wake_fd_;

    std::mutex commands_mu_;
    std::deque<std::function<void()>> commands_;  // guarded by commands_mu_
    std::atomic<bool> stopping_{false};
    std::atomic<std::thread::id> thread_id_{};
    std::atomic<std::size_t> member_count_{0};
    std::atomic<std::uint64_t> wakeups_{0};

    // Loop-thread state.
    std::vector<std::shared_ptr<FleetMember>> members_;
    std::unordered_map<std::uint64_t, Watch> watches_;
    std::unordered_map<const PublisherStream*, StreamEntry> streams_;
    std::unordered_map<std::uint64_t, PublisherStream*> streams_by_id_;
    std::vector<std::uint64_t> ready_;
    std::uint64_t next_token_ = 1;         // 0 is the wake eventfd
    std::optional<TimePoint> next_check_;  // no timer is due before this
    // Not thread_local: a static TLS block is allocated and zeroed in every thread of the process.
    std::vector<char> tcp_read_buffer_ = std::vector<char>(ZmtpSubscription::kReadBufferSize);

    std::thread thread_;
};

}  // namespace kvevents::detail

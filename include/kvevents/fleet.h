#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/fwd.h>

#include <kvevents/client_options.h>
#include <kvevents/event_handler.h>
#include <kvevents/zmq_client.h>
#include <kvevents/zmq_context.h>

namespace kvevents {

/// Settings of a Fleet as a whole. Validated by the Fleet constructor, which throws
/// std::invalid_argument naming the field.
struct FleetOptions {
    /// Loop threads that run every publisher's sockets, state machine and handler calls. 0: one
    /// per core.
    std::size_t loop_threads = 0;
    /// The context all publishers share. Null: the fleet makes one with `io_threads` I/O threads
    /// and room for 65536 sockets.
    std::shared_ptr<ZmqContext> context;
    int io_threads = 1;

    /// At most this many replays (start-up, gap, verification, tail probe) run at once across the
    /// fleet; the others wait their turn, with their live batches held as usual (at most
    /// max_buffered_batches each, for at most replay_total_timeout). A gateway that starts against
    /// 1,000 pods with full histories fetches them a few at a time, rather than asking 1,000
    /// ROUTERs for 10,000 batches each at once.
    std::size_t max_concurrent_replays = 8;

    /// What the fleet may hold of received batches, in bytes, across all publishers: libzmq's
    /// receive queues (publishers read through libzmq; see read_tcp_directly) and the batches held
    /// during replays. Each publisher gets
    ///   share = memory_budget_bytes / max(planned_publishers, publishers followed)
    /// and from it
    ///   receive_hwm          = share / (4 * batch_bytes_estimate)
    ///   max_buffered_batches = share / (2 * batch_bytes_estimate)
    /// (a SUB socket can queue about twice its high-water mark: its own pipe and the session's),
    /// each at least 16 and never above what its ClientOptions ask for. Past that, libzmq drops
    /// and the drops are healed from replay or announced, like any other gap. Replays in flight
    /// add at most max_concurrent_replays times a publisher's replay history (vLLM keeps 10,000
    /// batches). A publisher added past planned_publishers gets the smaller share of the count at
    /// that time; those already followed keep theirs.
    std::size_t memory_budget_bytes = std::size_t{512} << 20;
    std::size_t batch_bytes_estimate = 2048;
    std::size_t planned_publishers = 1000;

    /// Streams one bound fan-in socket may carry (distinct topics); a topic past this is counted
    /// as a decode error and dropped, so an engine cannot make the fleet grow without bound.
    std::size_t max_fan_in_streams = 4096;

    /// Publishers at a numeric TCP address (tcp://10.0.0.7:5557 or tcp://[fd00::7]:5557, which is
    /// what pod_ip gives) are read by kvevents' own ZMTP 3 reader on the loop thread, one TCP
    /// connection each, with no libzmq socket, pipe or I/O-thread hop in between: at 1,000
    /// publishers, a third of the CPU and a ninth of the memory (docs/benchmarks.md). There is
    /// then no receive queue (receive_hwm does not apply): a loop that falls behind leaves the
    /// bytes in the kernel's socket buffer (charged to the memory cgroup, up to
    /// net.ipv4.tcp_rmem's maximum each), and past that the publisher's own high-water mark drops,
    /// which shows as a gap. Host names, ipc://, inproc://, a source address and bound (fan-in)
    /// sockets always go through libzmq, as do replays. false: every publisher through a libzmq
    /// SUB socket. Speaks ZMTP 3.0 and later with the NULL mechanism (libzmq 4.0 on, pyzmq,
    /// JeroMQ); ZMTP 2 peers (libzmq 3.x) are refused with an error naming the version.
    bool read_tcp_directly = true;

    /// Where the fleet logs. Null: nothing is logged. A publisher's own ClientOptions::logger
    /// overrides it for that publisher.
    std::shared_ptr<spdlog::logger> logger;
};

/// What add() did.
enum class AddOutcome : std::uint8_t {
    kAdded,      // a new publisher
    kUnchanged,  // the same key with the same settings was already followed: nothing changed
    kReplaced,   // the same key with other settings: the old subscription was removed first
};

const char* to_string(AddOutcome outcome);

/// One publisher of a fleet: a pod's data-parallel rank, or a fan-in socket's topic.
struct PublisherStatus {
    std::string pod_key;
    int data_parallel_rank = 0;
    std::string model_name;
    /// The live endpoint as opened; for a fan-in stream, the bound socket's.
    std::string endpoint;
    std::string replay_endpoint;  // empty: replay off
    /// A stream of a fan-in socket (demultiplexed by topic) rather than a subscription of its own.
    bool fan_in = false;
    std::string topic;  // fan-in streams: the topic that names them
    /// The queue bounds the memory budget gave it (see FleetOptions::memory_budget_bytes).
    int receive_hwm = 0;
    std::size_t max_buffered_batches = 0;
    ClientStats stats;
};

/// Counters summed over every publisher, and how many are in each connection state.
struct FleetStats {
    ClientStats totals;  // state and sequence fields are left at their defaults
    std::size_t publishers = 0;
    std::size_t connecting = 0;
    std::size_t connected = 0;
    std::size_t disconnected = 0;
    std::size_t failed = 0;
    std::size_t replays_running = 0;
    std::size_t replays_waiting = 0;
    std::uint64_t wakeups = 0;  // of all loop threads
};

/// Follows any number of publishers with a fixed set of loop threads sharing one ZeroMQ context.
///
/// Each publisher is pinned to one loop and keeps its own state machine, statistics and notices,
/// exactly as a ZmqClient would. Handler calls for one publisher never overlap and come in
/// sequence order; publishers on one loop are served one after another, so a slow handler delays
/// its loop-mates (libzmq queues up to their receive high-water marks meanwhile, see
/// FleetOptions::memory_budget_bytes). A handler that blocks should hand batches to a queue of its
/// own (see QueuedEventHandler) and return.
///
/// Thread safety: every member function may be called from any thread, handlers included.
class Fleet {
public:
    /// Starts the loop threads. Throws std::invalid_argument naming a bad option.
    Fleet(FleetOptions options, EventHandler& handler);
    /// Removes every publisher and joins the loops. Must not run inside a handler.
    ~Fleet();
    Fleet(const Fleet&) = delete;
    Fleet& operator=(const Fleet&) = delete;

    /// Follows the publisher `options` describe; its key is (pod_key, data_parallel_rank). With
    /// `options.bind`, it is a fan-in socket (see add_fan_in). Throws std::invalid_argument for
    /// bad options, and std::runtime_error naming the endpoint when it cannot be opened (from a
    /// handler, where the call cannot wait for the loop, that is logged instead). `handler` null:
    /// the fleet's handler.
    AddOutcome add(ClientOptions options, EventHandler* handler = nullptr);
    /// A pod with `dp_size` data-parallel ranks: one publisher per rank, ports offset by rank as
    /// vLLM offsets them. Ranks the pod had before beyond dp_size are removed.
    std::vector<AddOutcome> add_pod(const ClientOptions& options,
                                    int dp_size,
                                    EventHandler* handler = nullptr);
    /// Binds one socket that many engines connect out to, and follows each distinct topic as a
    /// stream of its own (its own sequence, state machine, statistics and pod key). A topic of
    /// the form kv@<pod>@<model> names the pod and the model; any other topic is the pod key as it
    /// is. With `replay_port`, each stream's replay endpoint is tcp://<pod>:<replay_port>;
    /// without, its gaps are announced rather than healed. `options.pod_key` names the socket
    /// itself (its connection notices, and frames that name no topic).
    AddOutcome add_fan_in(ClientOptions options,
                          std::optional<int> replay_port = std::nullopt,
                          EventHandler* handler = nullptr);

    /// Stops following: no handler call for it starts after this returns, and none is running
    /// (from inside the handler of the publisher removed, only the current call may still be
    /// running). False when it was not followed.
    bool remove(const std::string& pod_key, int data_parallel_rank = 0);
    /// Every rank of the pod (or the fan-in socket of that key, with its streams); how many.
    std::size_t remove_pod(const std::string& pod_key);

    /// Stops following every publisher and joins the loop threads; publishers() and stats() still
    /// report them (state `stopped`), for a last statistics report. add() afterwards throws
    /// std::logic_error. Idempotent; must not run inside a handler.
    void stop();

    /// Every publisher followed, fan-in streams included, sorted by pod key and rank.
    std::vector<PublisherStatus> publishers() const;
    std::optional<PublisherStatus> publisher(const std::string& pod_key,
                                             int data_parallel_rank = 0) const;
    FleetStats stats() const;
    /// The endpoint a fan-in socket was bound to (wildcard ports resolved); empty if none.
    std::string fan_in_endpoint(const std::string& pod_key) const;

    std::size_t loop_threads() const;
    const FleetOptions& options() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Splits a fan-in topic: "kv@10.0.0.7@llama" gives pod "10.0.0.7" and model "llama"; any other
/// topic gives itself as the pod and no model.
struct FanInTopic {
    std::string pod;
    std::optional<std::string> model;
};
FanInTopic parse_fan_in_topic(std::string_view topic);

}  // namespace kvevents

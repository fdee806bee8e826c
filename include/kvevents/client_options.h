#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/fwd.h>

#include <kvevents/zmq_context.h>

namespace kvevents {

/// Everything a ZmqClient needs to follow one publisher (one inference pod, one DP rank).
/// Validated by the ZmqClient constructor, which throws std::invalid_argument naming the field.
struct ClientOptions {
    /// Identifies the pod in everything the handler sees (e.g. "pod-a" or its IP).
    std::string pod_key;
    /// Carried into every batch the handler sees; kvevents does not interpret it.
    std::string model_name;

    /// Live PUB endpoint, e.g. "tcp://10.0.0.7:5557", "tcp://[fd00::7]:5557" or
    /// "tcp://pod-a.ns.svc:5557". Empty: formed from pod_ip. Checked before use: a port outside
    /// 1-65535 (`*` or 0 only with bind), an invalid IP literal or an IPv6 address without
    /// brackets is an std::invalid_argument naming the problem; a host name that does not
    /// resolve is a warning at Start() (libzmq resolves it again on every reconnect).
    std::string endpoint;
    /// Replay ROUTER endpoint, e.g. "tcp://10.0.0.7:5558". Empty: formed from pod_ip when set,
    /// otherwise replay is off.
    std::string replay_endpoint;
    /// When set (and endpoint/replay_endpoint are empty), endpoints become tcp://IP:5557 and
    /// tcp://IP:5558, vLLM's defaults.
    std::string pod_ip;
    /// Turns replay off even when an endpoint is known.
    bool replay_enabled = true;
    /// Data-parallel rank: added to both ports, as vLLM offsets them.
    int data_parallel_rank = 0;

    /// SUB prefix filter on the topic frame; "" takes every topic.
    std::string topic_filter;
    /// Bind the SUB socket instead of connecting (for engines configured to connect out).
    bool bind = false;

    /// Replay from this sequence at start; nullopt: no start-up replay (live only).
    std::optional<std::uint64_t> start_sequence = 0;

    /// A replay that sends nothing for this long is abandoned (and retried with backoff).
    std::chrono::milliseconds replay_idle_timeout{2000};
    /// A replay that has not finished after this long is abandoned.
    std::chrono::milliseconds replay_total_timeout{30000};
    /// After a replay that got no answer, gaps are reported lost at once (live delivery is never
    /// held for an unresponsive replay endpoint) for this long; doubles on each further failure
    /// up to replay_backoff_max, and resets when a replay answers.
    std::chrono::milliseconds replay_backoff_initial{1000};
    std::chrono::milliseconds replay_backoff_max{30000};
    /// A stream that may have lost its last batches (after a reconnect, a backlog deep enough
    /// for the queues to drop, or a live gap) and then stays quiet this long is probed: one
    /// replay request from the last delivered batch, normally answered by that batch and the
    /// end marker. Zero turns the probe off: such a loss then shows only when the next batch
    /// arrives. Needs replay.
    std::chrono::milliseconds tail_probe_idle{1000};

    /// A publisher that has not connected this long after Start() gets one warning log line and
    /// a kNotConnected notice naming the endpoint (a wrong address or port, or an engine without
    /// KV events, would otherwise sit in `connecting` silently). Zero: never.
    std::chrono::milliseconds connect_warning_after{10000};

    /// ZMQ_RECONNECT_IVL / ZMQ_RECONNECT_IVL_MAX: libzmq's exponential reconnect backoff.
    std::chrono::milliseconds reconnect_interval{100};
    std::chrono::milliseconds reconnect_interval_max{5000};
    /// TCP keepalive (ZMQ_TCP_KEEPALIVE*): the kernel probes an idle connection, so a dead peer
    /// or a broken network is noticed (a disconnect notice, then reconnects) even though an idle
    /// vLLM engine sends nothing. Defaults notice a dead peer within about 16 s.
    bool tcp_keepalive = true;
    std::chrono::seconds tcp_keepalive_idle{10};
    std::chrono::seconds tcp_keepalive_interval{2};
    int tcp_keepalive_count = 3;
    /// ZMTP heartbeats (ZMQ_HEARTBEAT_IVL / ZMQ_HEARTBEAT_TIMEOUT); zero disables them, the
    /// default. They find a dead peer the same way keepalive does, but cost libzmq a timer update
    /// per received message (about +5 us p50 and +20 us p99 per batch here, see
    /// docs/benchmarks.md).
    std::chrono::milliseconds heartbeat_interval{0};
    std::chrono::milliseconds heartbeat_timeout{5000};
    /// ZMQ_RCVHWM of the SUB socket, in messages (batches). vLLM's publisher uses 100000.
    int receive_hwm = 100000;
    /// ZMQ_MAXMSGSIZE on the SUB and replay sockets: the largest message (a batch's payload
    /// frame) accepted, in bytes. libzmq drops the connection of a peer that sends a larger one;
    /// it reconnects, and the batch shows as a gap. Decoding takes at most 8 bytes of heap per
    /// payload byte (see decode.h), so this also bounds one batch's memory. vLLM's batches are
    /// kilobytes; -1 means no limit.
    std::int64_t max_message_size = 16 * 1024 * 1024;
    /// Live batches held while a replay runs; past this the newest are dropped and refetched.
    std::size_t max_buffered_batches = 10000;

    /// A ZeroMQ context shared with other clients (one set of libzmq threads for all of them).
    /// Null: the client makes its own, with one I/O thread.
    std::shared_ptr<ZmqContext> context;

    /// Where the client logs. Null: nothing is logged. kvevents never touches spdlog's globals.
    std::shared_ptr<spdlog::logger> logger;
    /// At most this many error lines per second per client; the rest are counted only.
    int log_errors_per_second = 10;
};

/// The endpoints a ClientOptions resolves to; throws std::invalid_argument naming the problem.
struct ResolvedEndpoints {
    std::string live;
    std::string replay;  // empty: replay off
};
ResolvedEndpoints resolve_endpoints(const ClientOptions& options);

/// Whether two option sets describe the same subscription: every field equal (the context and
/// logger by identity).
bool same_settings(const ClientOptions& a, const ClientOptions& b);

/// Checks every field; throws std::invalid_argument naming the first bad one.
void validate(const ClientOptions& options);

/// vLLM's offset_endpoint_port: tcp ports + rank, inproc gets "_dp<rank>", others reject rank > 0.
std::string offset_endpoint_port(const std::string& endpoint, int rank);

}  // namespace kvevents

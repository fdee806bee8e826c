#pragma once

// A deterministic simulator for the stream state machine: a model publisher (incarnations, a
// replay buffer that forgets, a live queue that drops when full, a ROUTER that drops replies past
// a bound, end marker included), a network (disconnects, a replay endpoint that goes silent, slow
// and late replies) and a simulated clock, driven by a list of operations. An oracle checks the
// machine's invariants after every operation. A run is fully determined by its config and its
// operations, so a failing run can be shrunk and printed as a plain unit test.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvevents::model {

enum class OpKind : std::uint8_t {
    kPublish,        // arg batches published (queued live when connected and not full)
    kSkip,           // a sequence number consumed and never sent or buffered (encode error)
    kDeliverLive,    // arg queued live messages reach the machine
    kServeReplay,    // the ROUTER answers the oldest request it has not answered
    kDeliverReplay,  // arg queued replay replies reach the machine (late ones included)
    kTick,           // arg milliseconds pass (never past the machine's next deadline)
    kTickToDeadline,
    kRestart,     // a new incarnation on the same sockets
    kDisconnect,  // the live connection drops; in-flight live messages are lost
    kReconnect,
    kReplayDown,  // the replay endpoint stops answering (requests and queued replies lost)
    kReplayUp,
    kGrantTurn,  // a request waiting its turn (replay_turns) is sent
};

struct Op {
    OpKind kind;
    std::uint32_t arg = 0;
};

struct ModelConfig {
    bool replay_available = true;
    std::optional<std::uint64_t> start_sequence = 0;
    /// The publisher has published this many batches before the client starts.
    std::uint32_t published_before_start = 0;
    std::uint32_t max_buffered = 16;
    std::uint32_t buffer_steps = 50;   // the publisher's replay buffer
    std::uint32_t live_capacity = 20;  // the live queue drops past this
    std::uint32_t router_bound = 0;    // replies past this are dropped; 0: none
    std::uint32_t idle_timeout_ms = 100;
    std::uint32_t total_timeout_ms = 1000;
    std::uint32_t backoff_initial_ms = 200;
    std::uint32_t backoff_max_ms = 1000;
    std::uint32_t tail_probe_idle_ms = 300;
    /// Every request waits for its turn (as behind a fleet's replay cap) until kGrantTurn.
    bool replay_turns = false;
};

struct RunResult {
    bool ok = true;
    std::string failure;    // the first broken invariant, with context
    std::size_t steps = 0;  // operations executed
    std::size_t delivered = 0;
    std::size_t restarts = 0;
    std::size_t false_restarts = 0;  // restart notices with no restart since the last delivery
    // Restarts that cannot be seen: with replay off, or on an unbroken connection whose first
    // batches were dropped, so the new sequence looked like a continuation. Documented; counted,
    // not failed.
    std::size_t undetectable_restarts = 0;
    std::size_t continuity_lost = 0;
    std::size_t losses = 0;
};

/// Runs the operations, then lets the system settle (no more faults) and checks that everything
/// published was delivered or announced.
RunResult run(const ModelConfig& config, const std::vector<Op>& ops);

/// Prints every operation and action of the following runs to stderr.
void set_tracing(bool on);

/// A random config and operation list from a seed.
ModelConfig random_config(std::uint64_t seed);
std::vector<Op> random_ops(std::uint64_t seed, std::size_t count);

/// Removes operations while the run still fails; returns the shortest failing list found.
std::vector<Op> shrink(const ModelConfig& config, std::vector<Op> ops);

/// C++ source that reproduces the run as a plain unit test.
std::string as_unit_test(const ModelConfig& config, const std::vector<Op>& ops);

}  // namespace kvevents::model

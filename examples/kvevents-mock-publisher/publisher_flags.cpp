#include <cmath>
#include <limits>
#include <map>
#include <ostream>
#include <stdexcept>
#include <vector>

#include <CLI/CLI.hpp>

#include "publisher_settings.h"

namespace kvevents::cli {
namespace {

using testing::ReplayEnvelope;
using testing::WireEra;

constexpr const char* kProgram = "kvevents-mock-publisher";

constexpr const char* kDescription =
    "Publishes a synthetic vLLM KV-event stream over ZeroMQ, as a vLLM engine's\n"
    "ZmqEventPublisher does (a PUB socket and a ROUTER replay socket), with faults, so that a\n"
    "subscriber in any language can be tested against it. The first stdout line is a JSON object\n"
    "with the bound endpoints; SIGHUP or SIGUSR1 restarts the engine (sequence from 0);\n"
    "SIGINT or SIGTERM stops it.";

// Every payload layout the encoder writes, by the name --era takes, with the replay envelope
// publishers of that era use.
struct EraChoice {
    WireEra era;
    ReplayEnvelope replay_envelope;
};

const std::map<std::string, EraChoice>& eras() {
    static const std::map<std::string, EraChoice> table = {
        {"v0.9", {WireEra::kV0_9, ReplayEnvelope::kWithoutTopic}},
        {"data-parallel", {WireEra::kDataParallel, ReplayEnvelope::kWithoutTopic}},
        {"medium", {WireEra::kMedium, ReplayEnvelope::kWithoutTopic}},
        {"lora-name", {WireEra::kLoraName, ReplayEnvelope::kWithoutTopic}},
        {"extra-keys", {WireEra::kExtraKeys, ReplayEnvelope::kWithoutTopic}},
        {"group-idx", {WireEra::kGroupIdx, ReplayEnvelope::kWithoutTopic}},
        {"kv-cache-spec", {WireEra::kKvCacheSpec, ReplayEnvelope::kWithoutTopic}},
        {"sglang", {WireEra::kSglang, ReplayEnvelope::kWithoutTopic}},
        {"map-events", {WireEra::kMapEvents, ReplayEnvelope::kWithTopic}},
    };
    return table;
}

std::vector<std::string> era_names() {
    std::vector<std::string> names;
    for (const auto& entry : eras()) names.push_back(entry.first);
    return names;
}

// Another process cannot reach inproc://, so only tcp:// and ipc:// make sense here.
const CLI::Validator kEndpoint(
    [](std::string& value) -> std::string {
        if (value.rfind("tcp://", 0) == 0 || value.rfind("ipc://", 0) == 0)
            return {};
        return "endpoint '" + value + "' must start with tcp:// or ipc://";
    },
    "ENDPOINT");

// A whole number of at least `minimum`, said in words (CLI::Range would print the type's maximum).
CLI::Validator at_least(std::uint64_t minimum) {
    return CLI::Validator(
        [minimum](std::string& value) -> std::string {
            std::uint64_t n = 0;
            if (value.find('-') == std::string::npos && CLI::detail::lexical_cast(value, n) &&
                n >= minimum) {
                return {};
            }
            return "needs a whole number of at least " + std::to_string(minimum) + ", got '" +
                   value + "'";
        },
        "N>=" + std::to_string(minimum));
}

}  // namespace

std::variant<PublisherSettings, ExitNow> parse_publisher_flags(int argc,
                                                               const char* const* argv,
                                                               std::ostream& out,
                                                               std::ostream& err) {
    PublisherSettings s;
    s.publisher.endpoint = "tcp://127.0.0.1:5557";
    s.publisher.replay_endpoint = "tcp://127.0.0.1:5558";
    s.era_name = "map-events";
    std::string replay_envelope;
    std::size_t events_per_batch = 0;
    std::uint64_t count = 0;
    double duration_seconds = 0;
    std::int64_t dp_rank = 0;

    CLI::App app(kDescription, kProgram);
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.get_formatter()->column_width(34);

    // Sockets.
    app.add_option("--endpoint", s.publisher.endpoint,
                   "PUB endpoint to bind; a '*' port picks a free one")
        ->capture_default_str()
        ->check(kEndpoint);
    CLI::Option* replay =
        app.add_option("--replay", s.publisher.replay_endpoint, "replay ROUTER endpoint to bind")
            ->capture_default_str()
            ->check(kEndpoint);
    bool without_replay = false;
    CLI::Option* no_replay =
        app.add_flag("--no-replay", without_replay, "no replay socket (vLLM's default)");
    app.add_flag("--connect", s.publisher.connect,
                 "connect the PUB socket to --endpoint instead of binding (for a subscriber "
                 "that binds)");

    // What is published.
    app.add_option("--era", s.era_name, "payload layout")
        ->capture_default_str()
        ->check(CLI::IsMember(era_names()));
    CLI::Option* envelope =
        app.add_option("--replay-envelope", replay_envelope,
                       "replay reply frames; default: the era's (with-topic for map-events)")
            ->check(CLI::IsMember({"with-topic", "without-topic"}));
    app.add_flag("--map-envelope", s.publisher.encoding.map_envelope,
                 "write the batch envelope as a map");
    app.add_option("--topic", s.publisher.topic, "topic frame of every message");
    app.add_option("--dp-rank", dp_rank, "data-parallel rank stamped into every batch")
        ->capture_default_str()
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{65535}));
    app.add_option("--rate", s.rate, "batches per second; 0: as fast as possible")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1e6));
    app.add_option("--events-per-batch", events_per_batch, "events in each batch (default 1 to 3)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
    CLI::Option* count_option =
        app.add_option("--count", count,
                       "publish this many batches, then only serve replay until stopped")
            ->check(at_least(1));
    CLI::Option* duration_option =
        app.add_option("--duration", duration_seconds, "exit after this many seconds")
            ->check(CLI::PositiveNumber);
    app.add_option("--buffer-steps", s.publisher.buffer_steps, "batches kept for replay")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}));
    app.add_option("--seed", s.seed, "seed of the workload and of --drop-rate")
        ->capture_default_str();

    // Faults.
    app.add_option("--drop-every", s.drop_every,
                   "do not send every Nth batch live (replay still has it)")
        ->check(at_least(2));
    app.add_option("--drop-rate", s.drop_rate,
                   "do not send this fraction of batches live, at random (replay still has them)")
        ->check(CLI::Range(0.0, 1.0));
    CLI::Option* silent =
        app.add_flag("--replay-silent", s.replay_silent, "read replay requests, never answer");
    CLI::Option* drop_after =
        app.add_option("--replay-drop-after", s.publisher.replay_drop_after,
                       "drop replay replies past this many, end marker included")
            ->check(at_least(1));
    app.add_option("--restart-every", s.restart_every,
                   "restart after this many batches of an engine incarnation")
        ->check(at_least(1));
    app.add_flag("--restart-reopens", s.restart_reopens,
                 "a restart closes both sockets and binds them again, as a replaced engine does");
    app.add_flag("--wait-for-subscriber", s.wait_for_subscriber,
                 "publish only once a subscriber has subscribed");

    no_replay->excludes(replay)->excludes(envelope)->excludes(silent)->excludes(drop_after);

    try {
        app.parse(argc, argv);
        if (s.publisher.connect && s.publisher.endpoint.find('*') != std::string::npos)
            throw CLI::ValidationError("--connect",
                                       "needs an address to connect to, not a '*' port");
    } catch (const CLI::CallForHelp&) {
        out << app.help();
        return ExitNow{0};
    } catch (const CLI::ParseError& e) {
        err << kProgram << ": " << e.what() << " (see --help)\n";
        return ExitNow{2};
    }

    const EraChoice& era = eras().at(s.era_name);
    s.publisher.encoding.era = era.era;
    s.publisher.replay_envelope = era.replay_envelope;
    if (!replay_envelope.empty()) {
        s.publisher.replay_envelope = replay_envelope == "with-topic"
                                          ? ReplayEnvelope::kWithTopic
                                          : ReplayEnvelope::kWithoutTopic;
    }
    if (without_replay)
        s.publisher.replay_endpoint.clear();
    s.publisher.data_parallel_rank = dp_rank;
    if (events_per_batch > 0)
        s.events_per_batch = events_per_batch;
    if (count_option->count() > 0)
        s.count = count;
    if (duration_option->count() > 0) {
        s.duration = std::chrono::milliseconds(std::llround(duration_seconds * 1000));
    }
    return s;
}

}  // namespace kvevents::cli

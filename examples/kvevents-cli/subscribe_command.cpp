#include "subscribe_command.h"

#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>

#include <CLI/CLI.hpp>
#include <spdlog/logger.h>

#include <kvevents/fleet.h>
#include <kvevents/hashing_check.h>

#include "cli_args.h"
#include "descriptor_limit.h"
#include "hashing_flags.h"
#include "logging.h"
#include "output_flags.h"
#include "pods_follower.h"
#include "run_control.h"
#include "stream_printer.h"
#ifdef KVEVENTS_CLI_METRICS
#include "metrics_server.h"
#endif

namespace kvevents::cli {
namespace {

struct Target {
    std::string endpoint;
    std::string replay;
    std::string pod_ip;
};

struct SubscribeConfig {
    std::vector<Target> targets;
    std::optional<std::string> pods_file;
    bool via_libzmq = false;  // publishers through libzmq SUB sockets, not the ZMTP reader
    bool no_replay = false;
    std::uint64_t dp_size = 1;
    std::string topic;
    std::optional<std::uint64_t> replay_from;
    bool bind = false;
    std::optional<int> fan_in_replay_port;
    std::size_t loops = 0;
    std::size_t max_replays = 8;
    std::optional<int> metrics_port;
    std::string metrics_address = "0.0.0.0";
    PrinterOptions printer;
    std::optional<std::chrono::milliseconds> duration;
    std::optional<std::chrono::milliseconds> stats_interval;
    std::string log_level;
    bool check_hashing_flag = false;
    HashingFlags hashing;
    std::optional<BlockHasher> check_hashing;  // from the two above, after parsing
};

void add_target_flags(CLI::App& command, SubscribeConfig& c) {
    // Triggered as each is parsed, so that a --replay meets the --endpoint before it.
    command
        .add_option_function<std::string>(
            "--endpoint",
            [&c](const std::string& endpoint) {
                c.targets.push_back(Target{endpoint, "", ""});
            },
            "live PUB endpoint, e.g. tcp://10.0.0.7:5557 (repeatable)")
        ->type_name("EP")
        ->trigger_on_parse()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    command
        .add_option_function<std::string>(
            "--replay",
            [&c](const std::string& endpoint) {
                if (c.targets.empty() || c.targets.back().endpoint.empty())
                    throw UsageError("--replay must follow the --endpoint it belongs to");
                c.targets.back().replay = endpoint;
            },
            "replay ROUTER endpoint of the preceding --endpoint")
        ->type_name("EP")
        ->trigger_on_parse()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    command
        .add_option_function<std::string>(
            "--pod-ip",
            [&c](const std::string& ip) {
                c.targets.push_back(Target{"", "", ip});
            },
            "a pod on vLLM's default ports: tcp://IP:5557, replay tcp://IP:5558 (repeatable)")
        ->type_name("IP")
        ->trigger_on_parse()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    command
        .add_option_function<std::string>(
            "--pods-file", [&c](const std::string& path) { c.pods_file = path; },
            "follow the pods FILE lists, one JSON object per line:\n"
            "  {\"pod\": \"pod-a\", \"pod_ip\": \"10.0.0.7\", \"dp_size\": 2, \"model\": "
            "\"m\"}\n"
            "  {\"pod\": \"pod-b\", \"endpoint\": \"tcp://...\", \"replay\": \"tcp://...\"}\n"
            "read again on SIGHUP and when it changes")
        ->type_name("FILE");
}

void add_stream_flags(CLI::App& command, SubscribeConfig& c) {
    command.add_flag("--no-replay", c.no_replay, "live stream only");
    command.add_flag("--via-libzmq", c.via_libzmq,
                     "read publishers through libzmq SUB sockets instead of kvevents' own ZMTP\n"
                     "reader (which needs ZMTP 3 and numeric tcp:// addresses)");
    add_whole_number(
        command, "--dp-size", 1, 1024, [&c](std::uint64_t n) { c.dp_size = n; },
        "follow data-parallel ranks 0..N-1 of each publisher (ports + rank)");
    command.add_option("--topic", c.topic, "only topics starting with PREFIX (default: all)")
        ->type_name("PREFIX");
    add_whole_number(
        command, "--replay-from", 0, UINT64_MAX - 1, [&c](std::uint64_t n) { c.replay_from = n; },
        "replay from SEQ at start (default 0 with replay)")
        ->type_name("SEQ");
    command.add_flag("--bind", c.bind,
                     "bind the endpoints for engines that connect out; each topic is its own\n"
                     "stream (kv@<pod>@<model> names the pod)");
    add_whole_number(
        command, "--fan-in-replay-port", 1, 65535,
        [&c](std::uint64_t n) { c.fan_in_replay_port = static_cast<int>(n); },
        "with --bind: replay each stream from tcp://<pod>:N");
    add_whole_number(
        command, "--loops", 1, 1024, [&c](std::uint64_t n) { c.loops = n; },
        "loop threads (default: one per core)");
    add_whole_number(
        command, "--max-replays", 1, 100000, [&c](std::uint64_t n) { c.max_replays = n; },
        "replays running at once (default 8)")
        ->type_name("K");
}

void add_run_flags(CLI::App& command, SubscribeConfig& c) {
    add_whole_number(
        command, "--metrics-port", 0, 65535,
        [&c](std::uint64_t n) { c.metrics_port = static_cast<int>(n); },
        "serve Prometheus /metrics on port N (0: any free port)");
    command
        .add_option("--metrics-address", c.metrics_address,
                    "address to serve metrics on (default 0.0.0.0)")
        ->type_name("A");
    add_whole_number(
        command, "--count", 1, UINT64_MAX, [&c](std::uint64_t n) { c.printer.max_events = n; },
        "stop after N events");
    add_seconds(
        command, "--duration", [&c](std::chrono::milliseconds d) { c.duration = d; },
        "stop after this long");
    add_seconds(
        command, "--stats-interval", [&c](std::chrono::milliseconds d) { c.stats_interval = d; },
        "print statistics to stderr periodically, one line per publisher");
    add_log_level(command, c.log_level, "warn");
    command
        .add_flag("--check-hashing", c.check_hashing_flag,
                  "recompute each stored block's hash and say per publisher whether the engines\n"
                  "hash as configured by the flags below (a notice, and a 'hashing' line with\n"
                  "each statistics line)")
        ->group("Block hashing");
    add_hashing_flags(command, c.hashing);
}

// The checks between flags, once all are parsed.
void check_flags(const CLI::App& command, SubscribeConfig& c) {
    reject_leftovers(command);
    if (c.targets.empty() && !c.pods_file)
        throw UsageError("give at least one --endpoint, --pod-ip or --pods-file");
    if (c.hashing.any_given && !c.check_hashing_flag)
        throw UsageError("--hash-algo, --hash-seed and --block-size configure --check-hashing");
    if (c.check_hashing_flag)
        c.check_hashing = make_hasher(c.hashing);
    if (c.no_replay && c.replay_from)
        throw UsageError("--replay-from needs replay; drop --no-replay");
    check_output_flags(c.printer);
    if (c.bind) {
        if (c.pods_file)
            throw UsageError(
                "--bind and --pods-file do not go together: engines connect to a bound "
                "socket, a pods file lists endpoints to connect to");
        for (const Target& t : c.targets) {
            if (!t.replay.empty() || !t.pod_ip.empty())
                throw UsageError(
                    "with --bind give only --endpoint: each stream's replay endpoint is "
                    "its pod's address in the topic (--fan-in-replay-port)");
        }
        if (c.dp_size != 1)
            throw UsageError(
                "--dp-size does not apply with --bind: each rank's topic is its stream");
    } else if (c.fan_in_replay_port) {
        throw UsageError("--fan-in-replay-port needs --bind");
    }
    if (c.metrics_address != "0.0.0.0" && !c.metrics_port)
        throw UsageError("--metrics-address needs --metrics-port");
#ifndef KVEVENTS_CLI_METRICS
    if (c.metrics_port)
        throw UsageError(
            "--metrics-port: this kvevents-cli was built without Prometheus support "
            "(install prometheus-cpp-dev and build again)");
#endif
}

// What every publisher shares, whether from flags or from the pods file.
ClientOptions base_options(const SubscribeConfig& c, const std::shared_ptr<spdlog::logger>& log) {
    ClientOptions o;
    o.replay_enabled = !c.no_replay;
    o.topic_filter = c.topic;
    o.start_sequence = c.no_replay ? std::nullopt : std::optional<std::uint64_t>(0);
    if (c.replay_from)
        o.start_sequence = c.replay_from;
    o.logger = log;
    return o;
}

void add_targets(Fleet& fleet, const SubscribeConfig& c, const ClientOptions& base) {
    for (const Target& t : c.targets) {
        ClientOptions o = base;
        o.endpoint = t.endpoint;
        o.replay_endpoint = t.replay;
        o.pod_ip = t.pod_ip;
        o.pod_key = t.pod_ip.empty() ? t.endpoint : t.pod_ip;
        if (c.bind) {
            fleet.add_fan_in(std::move(o), c.fan_in_replay_port);
        } else {
            fleet.add_pod(std::move(o), static_cast<int>(c.dp_size));
        }
    }
}

FleetOptions fleet_options(const SubscribeConfig& c, const std::shared_ptr<spdlog::logger>& log) {
    FleetOptions o;
    o.loop_threads = c.loops;
    o.max_concurrent_replays = c.max_replays;
    o.read_tcp_directly = !c.via_libzmq;
    o.logger = log;
    return o;
}

int run_subscribe(const CLI::App& command, SubscribeConfig& config) {
    check_flags(command, config);
    // Declared so that the fleet (and its threads) goes before the handlers and the printer, and
    // the metrics server before the fleet it reports.
    std::unique_ptr<StreamPrinter> printer;
    std::unique_ptr<PrintingHandler> handler;
    std::unique_ptr<HashingCheck> hashing;
#ifdef KVEVENTS_CLI_METRICS
    std::unique_ptr<MetricsServer> metrics;
#endif
    std::unique_ptr<Fleet> fleet;
    std::unique_ptr<PodsFollower> pods;
    try {
        auto logger = make_cli_logger(config.log_level);
        raise_descriptor_limit(*logger);
        printer = std::make_unique<StreamPrinter>(config.printer, std::cout, std::cerr);
        handler = std::make_unique<PrintingHandler>(*printer);
        EventHandler* fleet_handler = handler.get();
        if (config.check_hashing) {
            hashing = std::make_unique<HashingCheck>(*config.check_hashing, *fleet_handler);
            fleet_handler = hashing.get();
        }
#ifdef KVEVENTS_CLI_METRICS
        if (config.metrics_port) {
            metrics = std::make_unique<MetricsServer>(config.metrics_address, *config.metrics_port);
            fleet_handler = &metrics->observing(*handler);
            std::cerr << "kvevents-cli subscribe: serving metrics on http://"
                      << config.metrics_address << ':' << metrics->port() << "/metrics\n";
        }
#endif
        // Before any thread starts, so that every thread leaves the signals to wait_for_stop.
        block_stop_signals();
        fleet = std::make_unique<Fleet>(fleet_options(config, logger), *fleet_handler);
#ifdef KVEVENTS_CLI_METRICS
        if (metrics)
            metrics->track(*fleet);
#endif
        const ClientOptions base = base_options(config, logger);
        add_targets(*fleet, config, base);
        if (config.pods_file) {
            pods = std::make_unique<PodsFollower>(*fleet, *config.pods_file, base, std::cerr);
            pods->load();
        }
    } catch (const std::invalid_argument& e) {
        std::cerr << "kvevents-cli subscribe: " << e.what() << '\n';
        return 2;
    } catch (const std::runtime_error& e) {
        std::cerr << "kvevents-cli subscribe: " << e.what() << '\n';
        return 2;
    }
    auto print_all_stats = [&] {
        for (const PublisherStatus& p : fleet->publishers())
            printer->print_stats(publisher_label(p.pod_key, p.data_parallel_rank), p.stats);
        if (hashing) {
            for (const HashingCheck::PublisherResult& r : hashing->results())
                printer->print_hashing(publisher_label(r.pod_key, r.data_parallel_rank), r);
        }
    };
    WaitHooks hooks;
    hooks.should_stop = [&] { return printer->reached_max(); };
    hooks.every_interval = print_all_stats;
    if (pods) {
        hooks.on_hangup = [&] { pods->reload(); };
        hooks.every_second = [&] { pods->reload_if_changed(); };
    }
    const auto signal = wait_for_stop(config.duration, config.stats_interval, hooks);
    if (signal)
        std::cerr << "kvevents-cli subscribe: stopping on " << *signal << '\n';
#ifdef KVEVENTS_CLI_METRICS
    if (metrics)
        metrics->untrack(*fleet);
#endif
    fleet->stop();  // joins the loops: no handler call after this
    print_all_stats();
    return 0;
}

}  // namespace

Command add_subscribe_command(CLI::App& app) {
    auto config = std::make_shared<SubscribeConfig>();
    CLI::App* command = add_command(
        app, "subscribe", "follow live publishers and print their events",
        "Give at least one of (--endpoint EP [--replay EP] | --pod-ip IP | --pods-file FILE).\n"
        "Events go to stdout, notices and statistics to stderr.");
    add_target_flags(*command, *config);
    add_stream_flags(*command, *config);
    add_output_flags(*command, config->printer);
    add_run_flags(*command, *config);
    return Command{command, [command, config] { return run_subscribe(*command, *config); }};
}

}  // namespace kvevents::cli

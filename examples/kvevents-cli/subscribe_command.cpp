#include "subscribe_command.h"

#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>

#include <spdlog/logger.h>

#include <kvevents/fleet.h>
#include <kvevents/hashing_check.h>

#include "cli_args.h"
#include "descriptor_limit.h"
#include "hashing_flags.h"
#include "logging.h"
#include "pods_follower.h"
#include "run_control.h"
#include "stream_printer.h"
#ifdef KVEVENTS_CLI_METRICS
#include "metrics_server.h"
#endif

namespace kvevents::cli {
namespace {

constexpr const char* kUsage =
    "usage: kvevents-cli subscribe (--endpoint EP [--replay EP] | --pod-ip IP | --pods-file FILE)"
    "... [options]\n"
    "  --endpoint EP         live PUB endpoint, e.g. tcp://10.0.0.7:5557 (repeatable)\n"
    "  --replay EP           replay ROUTER endpoint of the preceding --endpoint\n"
    "  --pod-ip IP           a pod on vLLM's default ports: tcp://IP:5557, replay tcp://IP:5558\n"
    "  --pods-file FILE      follow the pods FILE lists, one JSON object per line:\n"
    "                          {\"pod\": \"pod-a\", \"pod_ip\": \"10.0.0.7\", \"dp_size\": 2, "
    "\"model\": \"m\"}\n"
    "                          {\"pod\": \"pod-b\", \"endpoint\": \"tcp://...\", \"replay\": "
    "\"tcp://...\"}\n"
    "                        read again on SIGHUP and when it changes\n"
    "  --no-replay           live stream only\n"
    "  --dp-size N           follow data-parallel ranks 0..N-1 of each publisher (ports + rank)\n"
    "  --topic PREFIX        only topics starting with PREFIX (default: all)\n"
    "  --replay-from SEQ     replay from SEQ at start (default 0 with replay)\n"
    "  --bind                bind the endpoints for engines that connect out; each topic is its\n"
    "                        own stream (kv@<pod>@<model> names the pod)\n"
    "  --fan-in-replay-port N  with --bind: replay each stream from tcp://<pod>:N\n"
    "  --loops N             loop threads (default: one per core)\n"
    "  --max-replays K       replays running at once (default 8)\n"
    "  --metrics-port N      serve Prometheus /metrics on port N (0: any free port)\n"
    "  --metrics-address A   address to serve metrics on (default 0.0.0.0)\n"
    "  --format text|json|none  output format (default text); none prints no events, only\n"
    "                        notices and the statistics lines\n"
    "  --notices             with --format json: stream notices as JSON lines on stdout\n"
    "  --count N             stop after N events\n"
    "  --duration SECONDS    stop after this long\n"
    "  --stats-interval SEC  print statistics to stderr periodically, one line per publisher\n"
    "  --log-level LEVEL     trace|debug|info|warn|error|critical|off (default warn)\n"
    "  --check-hashing       recompute each stored block's hash and say per publisher whether\n"
    "                        the engines hash as configured below (a notice, and a 'hashing'\n"
    "                        line with each statistics line)\n";

struct Target {
    std::string endpoint;
    std::string replay;
    std::string pod_ip;
};

struct SubscribeConfig {
    std::vector<Target> targets;
    std::optional<std::string> pods_file;
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
    std::string log_level = "warn";
    std::optional<BlockHasher> check_hashing;
};

SubscribeConfig parse(const std::vector<std::string>& args) {
    ArgCursor cursor("subscribe", args);
    SubscribeConfig c;
    HashingFlags hashing;
    bool check_hashing = false;
    bool hashing_flag_given = false;
    while (!cursor.done()) {
        const std::string flag = cursor.next();
        if (take_hashing_flag(cursor, flag, hashing)) {
            hashing_flag_given = true;
        } else if (flag == "--check-hashing") {
            check_hashing = true;
        } else if (flag == "--endpoint") {
            c.targets.push_back(Target{cursor.value_of(flag), "", ""});
        } else if (flag == "--replay") {
            if (c.targets.empty() || c.targets.back().endpoint.empty()) {
                cursor.fail("--replay must follow the --endpoint it belongs to");
            }
            c.targets.back().replay = cursor.value_of(flag);
        } else if (flag == "--pod-ip") {
            c.targets.push_back(Target{"", "", cursor.value_of(flag)});
        } else if (flag == "--pods-file") {
            c.pods_file = cursor.value_of(flag);
        } else if (flag == "--no-replay") {
            c.no_replay = true;
        } else if (flag == "--dp-size") {
            c.dp_size = cursor.unsigned_of(flag, 1, 1024);
        } else if (flag == "--topic") {
            c.topic = cursor.value_of(flag);
        } else if (flag == "--replay-from") {
            c.replay_from = cursor.unsigned_of(flag, 0, UINT64_MAX - 1);
        } else if (flag == "--bind") {
            c.bind = true;
        } else if (flag == "--fan-in-replay-port") {
            c.fan_in_replay_port = static_cast<int>(cursor.unsigned_of(flag, 1, 65535));
        } else if (flag == "--loops") {
            c.loops = cursor.unsigned_of(flag, 1, 1024);
        } else if (flag == "--max-replays") {
            c.max_replays = cursor.unsigned_of(flag, 1, 100000);
        } else if (flag == "--metrics-port") {
            c.metrics_port = static_cast<int>(cursor.unsigned_of(flag, 0, 65535));
        } else if (flag == "--metrics-address") {
            c.metrics_address = cursor.value_of(flag);
        } else if (flag == "--format") {
            c.printer.format = format_of(cursor, flag);
        } else if (flag == "--notices") {
            c.printer.json_notices = true;
        } else if (flag == "--count") {
            c.printer.max_events = cursor.unsigned_of(flag, 1, UINT64_MAX);
        } else if (flag == "--duration") {
            c.duration = cursor.seconds_of(flag);
        } else if (flag == "--stats-interval") {
            c.stats_interval = cursor.seconds_of(flag);
        } else if (flag == "--log-level") {
            c.log_level = cursor.value_of(flag);
        } else {
            cursor.fail("unknown option '" + flag + "' (see --help)");
        }
    }
    if (c.targets.empty() && !c.pods_file)
        cursor.fail("give at least one --endpoint, --pod-ip or --pods-file");
    if (hashing_flag_given && !check_hashing)
        cursor.fail("--hash-algo, --hash-seed and --block-size configure --check-hashing");
    if (check_hashing)
        c.check_hashing = make_hasher(hashing, cursor);
    if (c.no_replay && c.replay_from)
        cursor.fail("--replay-from needs replay; drop --no-replay");
    if (c.printer.json_notices && c.printer.format != OutputFormat::kJson)
        cursor.fail("--notices needs --format json");
    if (c.bind) {
        if (c.pods_file)
            cursor.fail(
                "--bind and --pods-file do not go together: engines connect to a bound "
                "socket, a pods file lists endpoints to connect to");
        for (const Target& t : c.targets) {
            if (!t.replay.empty() || !t.pod_ip.empty())
                cursor.fail(
                    "with --bind give only --endpoint: each stream's replay endpoint is "
                    "its pod's address in the topic (--fan-in-replay-port)");
        }
        if (c.dp_size != 1)
            cursor.fail("--dp-size does not apply with --bind: each rank's topic is its stream");
    } else if (c.fan_in_replay_port) {
        cursor.fail("--fan-in-replay-port needs --bind");
    }
    if (c.metrics_address != "0.0.0.0" && !c.metrics_port)
        cursor.fail("--metrics-address needs --metrics-port");
#ifndef KVEVENTS_CLI_METRICS
    if (c.metrics_port)
        cursor.fail(
            "--metrics-port: this kvevents-cli was built without Prometheus support "
            "(install prometheus-cpp-dev and build again)");
#endif
    return c;
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
    o.logger = log;
    return o;
}

}  // namespace

int run_subscribe(const std::vector<std::string>& args) {
    for (const std::string& a : args) {
        if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            return 0;
        }
    }
    // Declared so that the fleet (and its threads) goes before the handlers and the printer, and
    // the metrics server before the fleet it reports.
    SubscribeConfig config;
    std::unique_ptr<StreamPrinter> printer;
    std::unique_ptr<PrintingHandler> handler;
    std::unique_ptr<HashingCheck> hashing;
#ifdef KVEVENTS_CLI_METRICS
    std::unique_ptr<MetricsServer> metrics;
#endif
    std::unique_ptr<Fleet> fleet;
    std::unique_ptr<PodsFollower> pods;
    try {
        config = parse(args);
        auto logger = make_cli_logger("subscribe", config.log_level);
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
    } catch (const UsageError& e) {
        std::cerr << e.what() << '\n';
        return 2;
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

}  // namespace kvevents::cli

#include "subscribe_command.h"

#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>

#include <kvevents/zmq_client.h>

#include "cli_args.h"
#include "descriptor_limit.h"
#include "logging.h"
#include "run_control.h"
#include "stream_printer.h"

namespace kvevents::cli {
namespace {

constexpr const char* kUsage =
    "usage: kvevents-cli subscribe (--endpoint EP [--replay EP] | --pod-ip IP)... [options]\n"
    "  --endpoint EP         live PUB endpoint, e.g. tcp://10.0.0.7:5557 (repeatable)\n"
    "  --replay EP           replay ROUTER endpoint of the preceding --endpoint\n"
    "  --pod-ip IP           a pod on vLLM's default ports: tcp://IP:5557, replay tcp://IP:5558\n"
    "  --no-replay           live stream only\n"
    "  --dp-size N           follow data-parallel ranks 0..N-1 of each publisher (ports + rank)\n"
    "  --topic PREFIX        only topics starting with PREFIX (default: all)\n"
    "  --replay-from SEQ     replay from SEQ at start (default 0 with replay)\n"
    "  --bind                bind the endpoints (for engines that connect out)\n"
    "  --format text|json|none  output format (default text); none prints no events, only\n"
    "                        notices and the statistics lines\n"
    "  --notices             with --format json: stream notices as JSON lines on stdout\n"
    "  --count N             stop after N events\n"
    "  --duration SECONDS    stop after this long\n"
    "  --stats-interval SEC  print statistics to stderr periodically\n"
    "  --log-level LEVEL     trace|debug|info|warn|error|critical|off (default warn)\n";

struct Target {
    std::string endpoint;
    std::string replay;
    std::string pod_ip;
};

struct SubscribeConfig {
    std::vector<Target> targets;
    bool no_replay = false;
    std::uint64_t dp_size = 1;
    std::string topic;
    std::optional<std::uint64_t> replay_from;
    bool bind = false;
    PrinterOptions printer;
    std::optional<std::chrono::milliseconds> duration;
    std::optional<std::chrono::milliseconds> stats_interval;
    std::string log_level = "warn";
};

SubscribeConfig parse(const std::vector<std::string>& args) {
    ArgCursor cursor("subscribe", args);
    SubscribeConfig c;
    while (!cursor.done()) {
        const std::string flag = cursor.next();
        if (flag == "--endpoint") {
            c.targets.push_back(Target{cursor.value_of(flag), "", ""});
        } else if (flag == "--replay") {
            if (c.targets.empty() || c.targets.back().endpoint.empty()) {
                cursor.fail("--replay must follow the --endpoint it belongs to");
            }
            c.targets.back().replay = cursor.value_of(flag);
        } else if (flag == "--pod-ip") {
            c.targets.push_back(Target{"", "", cursor.value_of(flag)});
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
    if (c.targets.empty())
        cursor.fail("give at least one --endpoint or --pod-ip");
    if (c.no_replay && c.replay_from)
        cursor.fail("--replay-from needs replay; drop --no-replay");
    if (c.printer.json_notices && c.printer.format != OutputFormat::kJson) {
        cursor.fail("--notices needs --format json");
    }
    return c;
}

std::vector<ClientOptions> client_options(const SubscribeConfig& c,
                                          const std::shared_ptr<spdlog::logger>& logger) {
    std::vector<ClientOptions> out;
    for (const Target& t : c.targets) {
        for (std::uint64_t rank = 0; rank < c.dp_size; ++rank) {
            ClientOptions o;
            o.endpoint = t.endpoint;
            o.replay_endpoint = t.replay;
            o.pod_ip = t.pod_ip;
            o.replay_enabled = !c.no_replay;
            o.data_parallel_rank = static_cast<int>(rank);
            o.topic_filter = c.topic;
            o.bind = c.bind;
            o.start_sequence = c.no_replay ? std::nullopt : std::optional<std::uint64_t>(0);
            if (c.replay_from)
                o.start_sequence = c.replay_from;
            o.logger = logger;
            o.pod_key = t.pod_ip.empty() ? t.endpoint : t.pod_ip;
            if (c.dp_size > 1)
                o.pod_key += "#dp" + std::to_string(rank);
            out.push_back(std::move(o));
        }
    }
    return out;
}

}  // namespace

int run_subscribe(const std::vector<std::string>& args) {
    for (const std::string& a : args) {
        if (a == "-h" || a == "--help") {
            std::cout << kUsage;
            return 0;
        }
    }
    SubscribeConfig config;
    // Declared so that the clients (and their threads) go before the handlers and the printer.
    StreamPrinter* printer_ptr = nullptr;
    std::unique_ptr<StreamPrinter> printer;
    std::vector<std::unique_ptr<PrintingHandler>> handlers;
    std::vector<std::unique_ptr<ZmqClient>> clients;
    try {
        config = parse(args);
        auto logger = make_cli_logger("subscribe", config.log_level);
        raise_descriptor_limit(*logger);
        printer = std::make_unique<StreamPrinter>(config.printer, std::cout, std::cerr);
        printer_ptr = printer.get();
        // One context for all: one libzmq I/O thread however many publishers are followed.
        const auto context = std::make_shared<ZmqContext>();
        for (ClientOptions& o : client_options(config, logger)) {
            o.context = context;
            handlers.push_back(std::make_unique<PrintingHandler>(*printer));
            clients.push_back(std::make_unique<ZmqClient>(std::move(o), *handlers.back()));
        }
        block_stop_signals();
        for (auto& client : clients) client->Start();
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
        for (const auto& client : clients) {
            printer_ptr->print_stats(client->options().pod_key, client->stats());
        }
    };
    const auto signal = wait_for_stop(
        config.duration, config.stats_interval, [&] { return printer_ptr->reached_max(); },
        print_all_stats);
    if (signal)
        std::cerr << "kvevents-cli subscribe: stopping on " << *signal << '\n';
    for (auto& client : clients) client->Stop();
    print_all_stats();
    return 0;
}

}  // namespace kvevents::cli

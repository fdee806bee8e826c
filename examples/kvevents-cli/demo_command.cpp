#include "demo_command.h"

#include <chrono>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>

#include <kvevents/testing/mock_publisher.h>
#include <kvevents/zmq_client.h>

#include "cli_args.h"
#include "engine_workload.h"
#include "logging.h"
#include "output_flags.h"
#include "routing_demo.h"
#include "run_control.h"
#include "stream_printer.h"

namespace kvevents::cli {
namespace {

struct DemoConfig {
    PrinterOptions printer;
    bool quiet = false;
    std::string log_level;
};

constexpr std::uint64_t kHistoryBatches = 150;  // published before the client exists
constexpr std::uint64_t kLiveBatches = 250;     // then live, with drops
constexpr std::uint64_t kAfterRestart = 100;    // from the restarted engine
constexpr double kDropRate = 0.04;

// Checks the guarantee the demo exists to show: per engine incarnation, sequences arrive
// 0, 1, 2, ... with nothing missing or repeated. Forwards everything to the printer.
class VerifyingHandler final : public EventHandler {
public:
    VerifyingHandler(StreamPrinter& printer, bool quiet) : printer_(printer), quiet_(quiet) {}

    void on_batch(ReceivedBatch& batch) override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (batch.sequence != expected_)
                ++out_of_order_;
            expected_ = batch.sequence + 1;
            ++batches_;
            events_ += batch.batch.events.size();
        }
        if (!quiet_)
            printer_.print_batch(batch);
    }

    void on_notice(const StreamNotice& notice) override {
        if (notice.kind == StreamNotice::Kind::kPublisherRestarted) {
            std::lock_guard<std::mutex> lock(mu_);
            expected_ = 0;
        } else if (notice.kind == StreamNotice::Kind::kContinuityLost ||
                   notice.kind == StreamNotice::Kind::kUnrecoverableGap) {
            std::lock_guard<std::mutex> lock(mu_);
            expected_ = notice.kind == StreamNotice::Kind::kContinuityLost
                            ? notice.first_sequence.value_or(expected_)
                            : notice.last_sequence.value_or(expected_) + 1;
        }
        if (notice.kind != StreamNotice::Kind::kConnectionChanged || !quiet_) {
            printer_.print_notice(notice);
        }
    }

    std::uint64_t batches() const {
        std::lock_guard<std::mutex> lock(mu_);
        return batches_;
    }
    std::uint64_t events() const {
        std::lock_guard<std::mutex> lock(mu_);
        return events_;
    }
    std::uint64_t out_of_order() const {
        std::lock_guard<std::mutex> lock(mu_);
        return out_of_order_;
    }

private:
    StreamPrinter& printer_;
    const bool quiet_;
    mutable std::mutex mu_;
    std::uint64_t expected_ = 0;
    std::uint64_t batches_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t out_of_order_ = 0;
};

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Picks ~kDropRate of first..last to lose on the way, never `last` itself: a loss at the very end
// of an engine's life cannot be noticed by anyone (no later batch shows the gap).
std::set<std::uint64_t> pick_drops(std::mt19937_64& rng, std::uint64_t first, std::uint64_t last) {
    std::set<std::uint64_t> drops;
    for (std::uint64_t s = first; s < last; ++s) {
        if (std::bernoulli_distribution(kDropRate)(rng))
            drops.insert(s);
    }
    return drops;
}

int run_demo(const CLI::App& command, const DemoConfig& config) {
    reject_leftovers(command);
    check_output_flags(config.printer);
    const bool quiet = config.quiet;
    const std::shared_ptr<spdlog::logger> logger = make_cli_logger(config.log_level);

    testing::MockPublisherOptions publisher_options;
    publisher_options.topic = "kv@demo-pod@demo-model";
    testing::MockPublisher publisher(publisher_options);
    EngineWorkload workload(7);
    std::mt19937_64 rng(11);

    std::uint64_t published = 0;
    std::uint64_t published_events = 0;
    auto publish = [&] {
        const EventBatch batch = workload.next_batch(now_seconds());
        published_events += batch.events.size();
        ++published;
        return publisher.publish(batch);
    };
    for (std::uint64_t i = 0; i < kHistoryBatches; ++i) publish();

    StreamPrinter printer(config.printer, std::cout, std::cerr);
    VerifyingHandler handler(printer, quiet);
    ClientOptions options;
    options.pod_key = "demo-pod";
    options.model_name = "demo-model";
    options.endpoint = publisher.endpoint();
    options.replay_endpoint = publisher.replay_endpoint();
    options.replay_idle_timeout = std::chrono::milliseconds(500);
    options.logger = logger;
    ZmqClient client(options, handler);
    block_stop_signals();
    client.Start();
    if (!publisher.wait_for_subscriber(std::chrono::seconds(10))) {
        std::cerr << "kvevents-cli demo: the subscriber never connected\n";
        return 1;
    }

    // Live traffic at a steady pace, some of it lost on the way as PUB high-water-mark drops do.
    std::set<std::uint64_t> drops =
        pick_drops(rng, kHistoryBatches, kHistoryBatches + kLiveBatches - 1);
    const std::size_t dropped_first_life = drops.size();
    publisher.drop_live(drops);
    for (std::uint64_t i = 0; i < kLiveBatches; ++i) {
        publish();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workload pacing
    }
    // The engine restarts: sequence back to 0, empty cache, and its first batches go missing.
    publisher.restart();
    workload.forget_everything();
    drops = pick_drops(rng, 2, kAfterRestart - 1);
    drops.insert({0, 1});
    publisher.drop_live(drops);
    for (std::uint64_t i = 0; i < kAfterRestart; ++i) {
        publish();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }

    WaitHooks hooks;
    hooks.should_stop = [&] { return handler.batches() >= published; };
    const auto signal = wait_for_stop(std::chrono::seconds(15), std::nullopt, hooks);
    client.Stop();
    const ClientStats stats = client.stats();
    printer.print_stats(options.pod_key, stats);
    if (signal) {
        std::cerr << "kvevents-cli demo: interrupted by " << *signal << '\n';
        return 1;
    }
    const bool ok = handler.batches() == published && handler.events() == published_events &&
                    handler.out_of_order() == 0 && stats.batches_unrecoverable == 0;
    std::cerr << "demo: published " << published << " batches (" << published_events
              << " events) from 2 engine incarnations, " << dropped_first_life + drops.size()
              << " of them dropped on the way\n"
              << "demo: received " << handler.batches() << " batches (" << handler.events()
              << " events), " << handler.out_of_order() << " out of order; "
              << stats.batches_recovered << " came from replay (" << kHistoryBatches
              << " history + healed gaps), " << stats.gaps_detected << " gaps detected, "
              << stats.batches_unrecoverable << " lost, " << stats.restarts << " restart seen\n"
              << "demo: "
              << (ok ? "OK: every batch exactly once, in order"
                     : "FAILED: the stream was not delivered exactly once")
              << '\n';
    if (!ok)
        return 1;
    return run_routing_demo(std::cerr, logger) ? 0 : 1;
}

}  // namespace

Command add_demo_command(CLI::App& app) {
    auto config = std::make_shared<DemoConfig>();
    CLI::App* command = add_command(
        app, "demo", "run a mock vLLM publisher with faults and follow it (a self-check)",
        "Publishes a realistic KV-event workload from an in-process mock vLLM engine (history\n"
        "before the subscriber starts, dropped batches, an engine restart), follows it with a\n"
        "ZmqClient, prints every event and checks nothing was lost or repeated. Then routes a\n"
        "prompt: three mock engines publish vLLM-hashed blocks, a Fleet feeds a PrefixIndex, and\n"
        "the prompt goes to the pod holding the most of it.");
    add_output_flags(*command, config->printer);
    command->add_flag("--quiet", config->quiet, "print only notices and the summary");
    add_log_level(*command, config->log_level, "error");  // notices and the summary tell the story
    return Command{command, [command, config] { return run_demo(*command, *config); }};
}

}  // namespace kvevents::cli

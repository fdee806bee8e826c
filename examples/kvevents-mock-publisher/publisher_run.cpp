#include "publisher_run.h"

#include <chrono>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>

#include <unistd.h>

#include "engine_workload.h"
#include "json_writer.h"
#include "publisher_signals.h"

namespace kvevents::cli {
namespace {

using Clock = std::chrono::steady_clock;
using testing::MockPublisher;

constexpr const char* kProgram = "kvevents-mock-publisher";

double wall_clock_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Publishes the workload on a MockPublisher, applying the faults, and reports on `out` one JSON
// object per line: ready, restarted, finished (--count reached), stopped.
class PublishingLoop {
public:
    PublishingLoop(const PublisherSettings& settings, MockPublisher& publisher, std::ostream& out)
        : settings_(settings),
          publisher_(publisher),
          out_(out),
          workload_(settings.seed),
          drop_rng_(settings.seed ^ 0x5bd1e995U) {}

    int run() {
        publisher_.set_replay_enabled(!settings_.replay_silent);
        report_ready();
        const auto end =
            settings_.duration ? Clock::now() + *settings_.duration : Clock::time_point::max();
        const auto period = settings_.rate > 0
                                ? std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(1.0 / settings_.rate))
                                : Clock::duration::zero();
        bool subscribed = !settings_.wait_for_subscriber;
        auto next_batch_at = Clock::now();
        while (Clock::now() < end) {
            if (!subscribed) {
                subscribed = publisher_.wait_for_subscriber(std::chrono::milliseconds(20));
                next_batch_at = Clock::now();
            }
            const bool publishing = subscribed && !finished();
            if (publishing && Clock::now() >= next_batch_at) {
                publish_one();
                next_batch_at += period;
                if (finished())
                    report("finished");
            }
            const auto wake = !subscribed  ? Clock::now()
                              : publishing ? std::min(next_batch_at, end)
                                           : end;
            const ReceivedSignal signal = wait_for_signal(wake);
            if (signal.request == SignalRequest::kStop)
                break;
            if (signal.request == SignalRequest::kRestart)
                restart(signal.name);
        }
        report("stopped");
        return 0;
    }

private:
    bool finished() const { return settings_.count && published_ >= *settings_.count; }

    void publish_one() {
        if (settings_.restart_every > 0 && incarnation_batches_ == settings_.restart_every)
            restart("restart-every");
        if (drop_this_one()) {
            publisher_.drop_live({publisher_.next_sequence()});
            ++not_sent_live_;
        }
        const EventBatch batch =
            workload_.next_batch(wall_clock_seconds(), settings_.events_per_batch);
        publisher_.publish(batch);
        events_ += batch.events.size();
        ++published_;
        ++incarnation_batches_;
    }

    bool drop_this_one() {
        const bool every_nth =
            settings_.drop_every > 0 && (published_ + 1) % settings_.drop_every == 0;
        const bool at_random =
            settings_.drop_rate > 0 && std::bernoulli_distribution(settings_.drop_rate)(drop_rng_);
        return every_nth || at_random;
    }

    // A new engine incarnation: sequence from 0, replay buffer and cache empty.
    void restart(const char* cause) {
        if (settings_.restart_reopens) {
            reopen_sockets();
        } else {
            publisher_.restart();
        }
        workload_.forget_everything();
        ++restarts_;
        incarnation_batches_ = 0;
        JsonWriter line;
        line.begin_object();
        line.key("event");
        line.string("restarted");
        line.key("incarnation");
        line.number(restarts_ + 1);
        line.key("cause");
        line.string(cause);
        line.end_object();
        out_ << line.str() << std::endl;
    }

    // libzmq closes a listener on its I/O thread after close() returns, so binding the same port
    // again at once can find it still taken: retry for a while, as a replacement engine would.
    void reopen_sockets() {
        const auto give_up = Clock::now() + std::chrono::seconds(5);
        while (true) {
            try {
                publisher_.reopen();
                return;
            } catch (const std::exception&) {
                if (Clock::now() >= give_up)
                    throw;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    void report_ready() {
        JsonWriter line;
        line.begin_object();
        line.key("event");
        line.string("ready");
        line.key("endpoint");
        line.string(publisher_.endpoint());
        line.key("replay_endpoint");
        if (settings_.publisher.replay_endpoint.empty()) {
            line.null();
        } else {
            line.string(publisher_.replay_endpoint());
        }
        line.key("topic");
        line.string(settings_.publisher.topic);
        line.key("dp_rank");
        line.number(*settings_.publisher.data_parallel_rank);
        line.key("era");
        line.string(settings_.era_name);
        line.key("pid");
        line.number(static_cast<std::int64_t>(getpid()));
        line.end_object();
        out_ << line.str() << std::endl;
    }

    void report(const char* event) {
        JsonWriter line;
        line.begin_object();
        line.key("event");
        line.string(event);
        line.key("batches");
        line.number(published_);
        line.key("events");
        line.number(events_);
        line.key("not_sent_live");
        line.number(not_sent_live_);
        line.key("restarts");
        line.number(restarts_);
        line.key("next_seq");
        line.number(publisher_.next_sequence());
        line.key("replays_served");
        line.number(static_cast<std::uint64_t>(publisher_.replays_served()));
        line.end_object();
        out_ << line.str() << std::endl;
    }

    const PublisherSettings& settings_;
    MockPublisher& publisher_;
    std::ostream& out_;
    EngineWorkload workload_;
    std::mt19937_64 drop_rng_;
    std::uint64_t published_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t not_sent_live_ = 0;
    std::uint64_t restarts_ = 0;
    std::uint64_t incarnation_batches_ = 0;
};

}  // namespace

int run_publisher(const PublisherSettings& settings, std::ostream& out, std::ostream& err) {
    block_publisher_signals();  // before libzmq and the replay server start their threads
    std::unique_ptr<MockPublisher> publisher;
    try {
        publisher = std::make_unique<MockPublisher>(settings.publisher);
    } catch (const std::exception& e) {
        err << kProgram << ": cannot open " << settings.publisher.endpoint;
        if (!settings.publisher.replay_endpoint.empty())
            err << " (replay " << settings.publisher.replay_endpoint << ")";
        err << ": " << e.what() << '\n';
        return 2;
    }
    try {
        return PublishingLoop(settings, *publisher, out).run();
    } catch (const std::exception& e) {
        err << kProgram << ": " << e.what() << '\n';
        return 1;
    }
}

}  // namespace kvevents::cli

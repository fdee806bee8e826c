// End-to-end benchmark: a publisher thread sends realistic map-era batches over loopback TCP; a
// ZmqClient with a trivial handler receives them. In the same run, a bare libzmq SUB loop receives
// the identical messages without decoding: the transport's own limit. Prints readable results and
// ends with one JSON line of every figure (see docs/benchmarks.md).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.hpp>

#include <kvevents/testing/encoder.h>
#include <kvevents/zmq_client.h>

#include "bench_flags.h"
#include "process_memory.h"
#include "sample_stats.h"
#include "wire_frames.h"
#include "workload.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using kvevents::bench::percentile;

// --- measurement helpers -----------------------------------------------------------------------

using kvevents::bench::peak_rss_mib;
using kvevents::bench::rss_mib;

// --- flow control ------------------------------------------------------------------------------

// The receiver publishes how many batches it has consumed; waiters sleep on the atomic instead of
// spinning, so on two cores the sender never steals CPU from the receiver it waits for.
constexpr std::uint64_t kNotifyEvery = 256;

void mark_consumed(std::atomic<std::uint64_t>& consumed, std::uint64_t n, bool last) {
    consumed.store(n, std::memory_order_release);
    if (last || n % kNotifyEvery == 0)
        consumed.notify_all();
}

void wait_until_consumed(const std::atomic<std::uint64_t>& consumed, std::uint64_t target) {
    while (true) {
        const std::uint64_t now = consumed.load(std::memory_order_acquire);
        if (now >= target)
            return;
        consumed.wait(now, std::memory_order_acquire);
    }
}

// --- the publisher -----------------------------------------------------------------------------

// Sends [topic, seq, payload] like vLLM's publisher, with the payload encoded once up front so
// only the transport is measured on the sending side. An XPUB, to know when a subscriber is in.
class BenchPublisher {
public:
    explicit BenchPublisher(zmq::context_t& context) : socket_(context, zmq::socket_type::xpub) {
        socket_.set(zmq::sockopt::linger, 0);
        socket_.set(zmq::sockopt::sndhwm, 0);  // flow is controlled by the credit window below
        socket_.bind("tcp://127.0.0.1:*");
        endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
        payload_ = kvevents::testing::encode_batch(kvevents::bench::realistic_batch());
    }

    const std::string& endpoint() const { return endpoint_; }
    std::size_t payload_size() const { return payload_.size(); }

    void wait_for_subscriber() {
        zmq::message_t msg;
        while (true) {
            if (socket_.recv(msg, zmq::recv_flags::none) && msg.size() > 0 &&
                static_cast<const std::uint8_t*>(msg.data())[0] == 1) {
                return;
            }
        }
    }

    void send(std::uint64_t seq) {
        socket_.send(zmq::message_t(), zmq::send_flags::sndmore);
        const std::string s = kvevents::detail::be_u64(seq);
        socket_.send(zmq::buffer(s), zmq::send_flags::sndmore);
        socket_.send(zmq::buffer(payload_), zmq::send_flags::none);
    }

    // Sends `count` batches as fast as the receiver takes them, never more than `window` ahead of
    // what it has consumed, so no queue (and no memory) grows without bound.
    void send_flat_out(std::uint64_t first,
                       std::uint64_t count,
                       const std::atomic<std::uint64_t>& consumed,
                       std::uint64_t window) {
        for (std::uint64_t seq = first; seq < first + count; ++seq) {
            if (seq >= window)
                wait_until_consumed(consumed, seq - window + 1);
            send(seq);
        }
    }

private:
    zmq::socket_t socket_;
    std::string endpoint_;
    std::string payload_;
};

constexpr std::uint64_t kWindow = 2000;

// The baseline receiver: a bare SUB socket that takes `count` [topic, seq, payload] messages and
// does nothing with them but call on_message(index, sequence frame).
template <class OnMessage>
void raw_receive(zmq::context_t& context,
                 const std::string& endpoint,
                 std::uint64_t count,
                 OnMessage&& on_message) {
    zmq::socket_t sub(context, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, 0);
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(endpoint);
    zmq::message_t topic;
    zmq::message_t seq;
    zmq::message_t payload;
    for (std::uint64_t n = 0; n < count; ++n) {
        (void)sub.recv(topic);
        (void)sub.recv(seq);
        (void)sub.recv(payload);
        on_message(n, seq.to_string_view());
    }
}

// --- throughput ----------------------------------------------------------------------------------

struct Throughput {
    double batches_per_s;
    double events_per_s;
};

constexpr std::uint64_t kEventsPerBatch = 8;

Throughput raw_sub_throughput(std::uint64_t batches) {
    zmq::context_t context;
    BenchPublisher publisher(context);
    std::atomic<std::uint64_t> consumed{0};
    Clock::time_point first_at;
    Clock::time_point last_at;
    // Its own context, as the client has: in production the two ends are separate processes.
    zmq::context_t receiver_context;
    std::thread receiver([&] {
        raw_receive(receiver_context, publisher.endpoint(), batches,
                    [&](std::uint64_t n, std::string_view) {
                        if (n == 0)
                            first_at = Clock::now();
                        mark_consumed(consumed, n + 1, n + 1 == batches);
                    });
        last_at = Clock::now();
    });
    publisher.wait_for_subscriber();
    publisher.send_flat_out(0, batches, consumed, kWindow);
    receiver.join();
    const double seconds = std::chrono::duration<double>(last_at - first_at).count();
    const double bps = static_cast<double>(batches - 1) / seconds;
    return {bps, bps * kEventsPerBatch};
}

// Counts what the client delivers; optionally records per-sequence arrival times.
class CountingHandler final : public kvevents::EventHandler {
public:
    explicit CountingHandler(std::atomic<std::uint64_t>& consumed) : consumed_(consumed) {}

    void on_batch(kvevents::ReceivedBatch& b) override {
        const auto now = Clock::now();
        if (arrivals)
            (*arrivals)[b.sequence].store(now.time_since_epoch().count(),
                                          std::memory_order_relaxed);
        if (b.sequence == 0)
            first_at = now;
        last_at = now;
        events += b.batch.events.size();
        mark_consumed(consumed_, b.sequence + 1, b.sequence + 1 == expected_last);
    }

    std::atomic<std::uint64_t>& consumed_;
    std::uint64_t expected_last = 0;  // wake waiters at once when this many have arrived
    std::vector<std::atomic<std::int64_t>>* arrivals = nullptr;
    Clock::time_point first_at;
    Clock::time_point last_at;
    std::uint64_t events = 0;
};

kvevents::ClientOptions bench_options(const std::string& endpoint) {
    kvevents::ClientOptions o;
    o.pod_key = "bench";
    o.endpoint = endpoint;
    o.replay_enabled = false;  // the publisher has no replay socket
    o.start_sequence = 0;      // but a missing batch would still be reported
    o.receive_hwm = 0;
    return o;
}

struct ClientRun {
    Throughput throughput;
    double rss_at_1m_events = 0;
    double rss_at_5m_events = 0;
    std::uint64_t lost = 0;
};

// Runs the client over `batches` batches; samples RSS when 1M and 5M events have been delivered.
ClientRun client_throughput(std::uint64_t batches) {
    zmq::context_t context;
    BenchPublisher publisher(context);
    std::atomic<std::uint64_t> consumed{0};
    CountingHandler handler(consumed);
    kvevents::ZmqClient client(bench_options(publisher.endpoint()), handler);
    client.Start();
    publisher.wait_for_subscriber();
    ClientRun run;
    const std::uint64_t at_1m = 1000000 / kEventsPerBatch;
    const std::uint64_t at_5m = 5000000 / kEventsPerBatch;
    std::uint64_t sent = 0;
    auto send_until = [&](std::uint64_t target) {
        handler.expected_last = target;
        publisher.send_flat_out(sent, target - sent, consumed, kWindow);
        sent = target;
        wait_until_consumed(consumed, target);
    };
    if (batches >= at_5m) {
        send_until(at_1m);
        run.rss_at_1m_events = rss_mib();
        for (std::uint64_t m = 2; m <= 5; ++m) {
            send_until(m * at_1m);
            const double rss = rss_mib();
            std::printf("  RSS at %lluM events: %.2f MiB (heap in use %.2f MiB)\n",
                        static_cast<unsigned long long>(m), rss,
                        static_cast<double>(mallinfo2().uordblks) / (1024.0 * 1024.0));
        }
        run.rss_at_5m_events = rss_mib();
    }
    send_until(batches);
    client.Stop();
    const double seconds =
        std::chrono::duration<double>(handler.last_at - handler.first_at).count();
    const double bps = static_cast<double>(batches - 1) / seconds;
    run.throughput = {bps, static_cast<double>(handler.events) / seconds};
    run.lost = client.stats().batches_unrecoverable;
    return run;
}

// --- latency
// ---------------------------------------------------------------------------------------

struct Latency {
    double rate;
    double p50_us;
    double p99_us;
    double p999_us;
    std::size_t samples;
};

// A bare SUB loop that notes when each sequence arrived: the transport's own latency.
class RawArrivals {
public:
    RawArrivals(zmq::context_t& context,
                const std::string& endpoint,
                std::vector<std::atomic<std::int64_t>>& arrived_at,
                std::atomic<std::uint64_t>& consumed)
        : thread_([&context, endpoint, &arrived_at, &consumed] {
              raw_receive(context, endpoint, arrived_at.size(),
                          [&](std::uint64_t n, std::string_view seq) {
                              const std::uint64_t s = kvevents::detail::read_be_u64(seq);
                              arrived_at[s].store(Clock::now().time_since_epoch().count(),
                                                  std::memory_order_relaxed);
                              mark_consumed(consumed, n + 1, n + 1 == arrived_at.size());
                          });
          }) {}
    ~RawArrivals() { thread_.join(); }

private:
    std::thread thread_;
};

// Publishes at a fixed rate; latency is from just after the publisher's send() returned (its own
// cost excluded) to the handler call (or, for the raw loop, the receive), on one steady clock
// shared by both threads.
Latency measure_latency(bool through_client,
                        double rate,
                        std::chrono::milliseconds duration,
                        FILE* samples_out) {
    const auto count =
        static_cast<std::uint64_t>(rate * std::chrono::duration<double>(duration).count());
    zmq::context_t context;
    zmq::context_t receiver_context;  // the raw loop's own, as the client has its own
    BenchPublisher publisher(context);
    std::atomic<std::uint64_t> consumed{0};
    std::vector<std::atomic<std::int64_t>> sent_at(count);
    std::vector<std::atomic<std::int64_t>> arrived_at(count);
    CountingHandler handler(consumed);
    handler.arrivals = &arrived_at;
    handler.expected_last = count;
    std::unique_ptr<kvevents::ZmqClient> client;
    std::unique_ptr<RawArrivals> raw;
    if (through_client) {
        client =
            std::make_unique<kvevents::ZmqClient>(bench_options(publisher.endpoint()), handler);
        client->Start();
    } else {
        raw = std::make_unique<RawArrivals>(receiver_context, publisher.endpoint(), arrived_at,
                                            consumed);
    }
    publisher.wait_for_subscriber();
    const auto interval = std::chrono::duration<double>(1.0 / rate);
    const auto start = Clock::now();
    for (std::uint64_t i = 0; i < count; ++i) {
        // Pacing: sleep to the next slot; a late wake-up sends the overdue batches back to back.
        const auto slot =
            start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
        if (Clock::now() < slot)
            std::this_thread::sleep_until(slot);
        publisher.send(i);
        sent_at[i].store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    }
    while (consumed.load(std::memory_order_acquire) < count) std::this_thread::yield();
    if (client)
        client->Stop();
    raw.reset();
    std::vector<double> us;
    us.reserve(count);
    const std::uint64_t warmup = count / 20;  // the first 5%: connection and cache warm-up
    for (std::uint64_t i = warmup; i < count; ++i) {
        const auto d = arrived_at[i].load() - sent_at[i].load();
        us.push_back(std::max<double>(0.0, static_cast<double>(d) / 1000.0));
    }
    if (samples_out) {
        for (const double v : us) {
            std::fprintf(samples_out, "%s %g %g\n", through_client ? "client" : "raw", rate, v);
        }
    }
    return {rate, percentile(us, 0.50), percentile(us, 0.99), percentile(us, 0.999), us.size()};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app(
        "End to end: a ZmqClient against a bare libzmq SUB loop over loopback TCP; throughput,\n"
        "latency at three rates and memory, ending with one JSON line of every figure (about 30 "
        "s).",
        "kvevents-bench");
    std::string samples_path;
    app.add_option("--samples", samples_path,
                   "also write every latency sample to FILE, one \"receiver rate latency_us\" per\n"
                   "line (bench/plot_latency.sh draws them)")
        ->type_name("FILE");
    kvevents::bench::parse_flags_or_exit(app, argc, argv);
    FILE* samples = nullptr;
    if (!samples_path.empty()) {
        samples = std::fopen(samples_path.c_str(), "w");
        if (!samples) {
            std::fprintf(stderr, "kvevents-bench: cannot write '%s'\n", samples_path.c_str());
            return 2;
        }
    }

    // Throughput: raw and client alternate, five rounds each, and the medians are compared, so a
    // noisy neighbour on this shared machine hits both sides alike.
    constexpr std::uint64_t kThroughputBatches = 100000;
    constexpr int kRounds = 5;
    std::vector<double> raw_rates;
    std::vector<double> client_rates;
    std::vector<double> client_event_rates;
    std::uint64_t lost = 0;
    for (int round = 0; round < kRounds; ++round) {
        raw_rates.push_back(raw_sub_throughput(kThroughputBatches).batches_per_s);
        const ClientRun run = client_throughput(kThroughputBatches);
        client_rates.push_back(run.throughput.batches_per_s);
        client_event_rates.push_back(run.throughput.events_per_s);
        lost += run.lost;
    }
    const double raw_bps = median(raw_rates);
    const double client_bps = median(client_rates);
    const double client_eps = median(client_event_rates);
    std::printf("raw SUB loop:   %10.0f batches/s %12.0f events/s   (median of %d)\n", raw_bps,
                raw_bps * kEventsPerBatch, kRounds);
    std::printf("ZmqClient:      %10.0f batches/s %12.0f events/s   ratio %.3f\n", client_bps,
                client_eps, client_bps / raw_bps);

    std::vector<Latency> latencies;
    for (const double rate : {1000.0, 10000.0, 50000.0}) {
        const Latency raw = measure_latency(false, rate, 3s, samples);
        const Latency client = measure_latency(true, rate, 3s, samples);
        latencies.push_back(client);
        std::printf(
            "latency @ %6.0f batches/s  client p50 %6.1f  p99 %6.1f  p99.9 %7.1f us"
            "   | raw SUB p50 %6.1f  p99 %6.1f  p99.9 %7.1f us\n",
            rate, client.p50_us, client.p99_us, client.p999_us, raw.p50_us, raw.p99_us,
            raw.p999_us);
    }
    if (samples)
        std::fclose(samples);

    // 5M events = 625k batches, the memory run.
    const ClientRun memory = client_throughput(5000000 / kEventsPerBatch + 1);
    const double growth = memory.rss_at_5m_events - memory.rss_at_1m_events;
    std::printf(
        "memory: RSS %.1f MiB at 1M events, %.1f MiB at 5M (growth %.2f MiB), peak %.1f MiB\n",
        memory.rss_at_1m_events, memory.rss_at_5m_events, growth, peak_rss_mib());
    std::printf("lost batches: %llu\n", static_cast<unsigned long long>(lost + memory.lost));

    const Latency& at_10k = latencies[1];
    std::printf(
        "{\"client_batches_per_s\":%.0f,\"raw_batches_per_s\":%.0f,\"ratio_client_to_raw\":%.3f,"
        "\"events_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
        "\"rss_peak_mib\":%.1f,\"rss_growth_mib\":%.2f}\n",
        client_bps, raw_bps, client_bps / raw_bps, client_eps, at_10k.p50_us, at_10k.p99_us,
        at_10k.p999_us, peak_rss_mib(), growth);
    return 0;
}

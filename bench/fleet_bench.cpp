// kvevents-fleet-bench: following many publishers from one process, the Fleet against one
// ZmqClient per publisher, in the same run. The publishers are plain libzmq PUB + ROUTER pairs in
// a child process (this program started with --serve), each sending 20 batches/s of 8 events and
// answering replay requests from a buffer like vLLM's. Prints readable results to stderr and one
// JSON line of every figure to stdout (see docs/benchmarks.md).

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include <kvevents/fleet.h>
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

constexpr int kBatchesPerSecond = 20;
constexpr std::size_t kReplayBuffer = 10000;  // vLLM's buffer_steps

struct Flags {
    std::vector<std::size_t> sizes{10, 100, 1000};
    int idle_seconds = 20;
    int busy_seconds = 10;
    std::size_t churn = 100;
    std::size_t storm = 1000;
    std::size_t storm_history = 10000;
    std::size_t max_replays = 8;
    std::vector<std::string> designs{"fleet", "fleet-libzmq", "client-per-publisher"};
    std::optional<std::string> output;
    // Internal: run as the publisher process.
    std::optional<std::size_t> serve;
    std::size_t history = 0;
};

std::size_t number_of(const std::string& flag, const std::string& text, std::size_t max) {
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > max)
        throw CLI::ValidationError(flag + " needs a whole number up to " + std::to_string(max) +
                                   ", got '" + text + "'");
    return value;
}

// An option whose value, a whole number up to max, goes to `set`.
CLI::Option* add_number(CLI::App& app,
                        const std::string& flag,
                        std::size_t max,
                        std::function<void(std::size_t)> set,
                        const std::string& description) {
    return app
        .add_option_function<std::string>(
            flag,
            [flag, max, set = std::move(set)](const std::string& text) {
                set(number_of(flag, text, max));
            },
            description)
        ->type_name("N");
}

// The comma-separated parts of `text`.
std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
    return parts;
}

Flags parse_flags(int argc, char** argv) {
    Flags f;
    CLI::App app(
        "The Fleet against one ZmqClient per publisher, following many publishers from one\n"
        "process. Prints readable results to stderr and one JSON line of every figure to stdout.",
        "kvevents-fleet-bench");
    app.add_option_function<std::string>(
           "--sizes",
           [&f](const std::string& text) {
               f.sizes.clear();
               for (const std::string& part : split_commas(text)) {
                   const std::size_t n = number_of("--sizes", part, 5000);
                   if (n == 0)
                       throw CLI::ValidationError("--sizes entries must be at least 1");
                   f.sizes.push_back(n);
               }
           },
           "publisher counts to measure (default 10,100,1000)")
        ->type_name("N,N,...");
    add_number(
        app, "--idle-seconds", 3600, [&f](std::size_t n) { f.idle_seconds = static_cast<int>(n); },
        "idle CPU measured over N seconds (default 20)");
    add_number(
        app, "--busy-seconds", 3600,
        [&f](std::size_t n) { f.busy_seconds = static_cast<int>(std::max<std::size_t>(1, n)); },
        "busy CPU and throughput over N seconds (default 10)");
    add_number(
        app, "--churn", 5000, [&f](std::size_t n) { f.churn = n; },
        "churn test: replace N/2 of N publishers while all publish (default 100; 0: skip)");
    add_number(
        app, "--storm", 5000, [&f](std::size_t n) { f.storm = n; },
        "replay storm: N publishers with full histories (default 1000; 0: skip)");
    add_number(
        app, "--storm-history", kReplayBuffer,
        [&f](std::size_t n) { f.storm_history = std::max<std::size_t>(1, n); },
        "batches of history per publisher in the storm (default 10000)");
    add_number(
        app, "--max-replays", 100000,
        [&f](std::size_t n) { f.max_replays = std::max<std::size_t>(1, n); },
        "the fleet's replay cap (default 8)");
    app.add_option_function<std::string>(
           "--designs",
           [&f](const std::string& text) {
               f.designs.clear();
               for (const std::string& part : split_commas(text)) {
                   if (part != "fleet" && part != "fleet-libzmq" && part != "client-per-publisher")
                       throw CLI::ValidationError(
                           "--designs takes fleet, fleet-libzmq and client-per-publisher, got '" +
                           part + "'");
                   f.designs.push_back(part);
               }
           },
           "any of fleet, fleet-libzmq (its publishers read through libzmq SUB sockets) and "
           "client-per-publisher (default all three)")
        ->type_name("D,D");
    app.add_option_function<std::string>(
           "--output", [&f](const std::string& path) { f.output = path; },
           "also write the JSON line to FILE")
        ->type_name("FILE");
    // Internal: how the program starts itself as the publisher process.
    add_number(
        app, "--serve", 10000, [&f](std::size_t n) { f.serve = n; }, "")
        ->group("");
    add_number(
        app, "--history", kReplayBuffer, [&f](std::size_t n) { f.history = n; }, "")
        ->group("");
    kvevents::bench::parse_flags_or_exit(app, argc, argv);
    return f;
}

double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ================================================================================================
// The publisher process.

// A batch's bytes depend only on its sequence number and its ts, so a replayed batch is the
// live one byte for byte without keeping every payload: templates are patched with the ts.
class Payloads {
public:
    Payloads() {
        for (std::size_t i = 0; i < kTemplates; ++i) {
            templates_.push_back(
                kvevents::testing::encode_batch(kvevents::bench::realistic_batch(i)));
            // [ts, events, rank]: fixarray, then float64 (0xcb) at byte 1.
            if (templates_.back().size() < 10 ||
                static_cast<unsigned char>(templates_.back()[1]) != 0xcb)
                throw std::logic_error("unexpected batch encoding: ts is not a float64 at byte 1");
        }
    }
    std::string make(std::uint64_t sequence, double ts) const {
        std::string out = templates_[sequence % kTemplates];
        std::uint64_t bits = 0;
        std::memcpy(&bits, &ts, sizeof bits);
        for (int i = 0; i < 8; ++i)
            out[static_cast<std::size_t>(2 + i)] = static_cast<char>(bits >> (56 - 8 * i));
        return out;
    }

private:
    static constexpr std::size_t kTemplates = 64;
    std::vector<std::string> templates_;
};

struct BenchPublisher {
    std::unique_ptr<zmq::socket_t> pub;
    std::unique_ptr<zmq::socket_t> router;
    std::string topic;
    std::uint64_t next_seq = 0;
    std::vector<double> ts_ring = std::vector<double>(kReplayBuffer, 1700000000.25);
};

void serve_replay(BenchPublisher& p, const Payloads& payloads) {
    std::vector<zmq::message_t> parts;
    while (true) {
        parts.clear();
        zmq::message_t part;
        if (!p.router->recv(part, zmq::recv_flags::dontwait))
            return;
        parts.push_back(std::move(part));
        while (parts.back().more()) {
            zmq::message_t next;
            (void)p.router->recv(next, zmq::recv_flags::none);
            parts.push_back(std::move(next));
        }
        if (parts.size() != 3)
            continue;
        const std::uint64_t from = kvevents::detail::read_be_u64(parts[2].to_string_view());
        const std::uint64_t kept = std::min<std::uint64_t>(p.next_seq, kReplayBuffer);
        const std::uint64_t first = std::max(from, p.next_seq - kept);
        const std::string identity(parts[0].to_string_view());
        for (std::uint64_t s = first; s < p.next_seq; ++s) {
            p.router->send(zmq::buffer(identity), zmq::send_flags::sndmore);
            p.router->send(zmq::message_t(), zmq::send_flags::sndmore);
            p.router->send(zmq::buffer(p.topic), zmq::send_flags::sndmore);
            p.router->send(zmq::buffer(kvevents::detail::be_u64(s)), zmq::send_flags::sndmore);
            p.router->send(zmq::buffer(payloads.make(s, p.ts_ring[s % kReplayBuffer])),
                           zmq::send_flags::none);
        }
        p.router->send(zmq::buffer(identity), zmq::send_flags::sndmore);
        p.router->send(zmq::message_t(), zmq::send_flags::sndmore);
        p.router->send(zmq::message_t(), zmq::send_flags::sndmore);
        p.router->send(zmq::buffer(kvevents::detail::be_u64(kvevents::detail::kReplayEndSequence)),
                       zmq::send_flags::sndmore);
        p.router->send(zmq::message_t(), zmq::send_flags::none);
    }
}

// Commands on stdin, one per line: "go" starts publishing, "pause" stops and answers with every
// publisher's next sequence; end of input ends the process.
int serve(std::size_t n, std::size_t history) {
    zmq::context_t context(1);
    context.set(zmq::ctxopt::max_sockets, 65536);
    const Payloads payloads;
    std::vector<BenchPublisher> pubs(n);
    for (std::size_t i = 0; i < n; ++i) {
        BenchPublisher& p = pubs[i];
        p.topic = "kv@bench-" + std::to_string(i) + "@model";
        p.pub = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pub);
        p.pub->set(zmq::sockopt::sndhwm, 100000);  // vLLM's
        p.pub->set(zmq::sockopt::linger, 0);
        p.pub->bind("tcp://127.0.0.1:*");
        p.router = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
        p.router->set(zmq::sockopt::sndhwm, 0);  // replies are never dropped here
        p.router->set(zmq::sockopt::linger, 0);
        p.router->bind("tcp://127.0.0.1:*");
        p.next_seq = history;
        std::cout << "ENDPOINT " << p.pub->get(zmq::sockopt::last_endpoint) << ' '
                  << p.router->get(zmq::sockopt::last_endpoint) << '\n';
    }
    std::cout << "READY" << std::endl;

    std::atomic<bool> publishing{false};
    std::atomic<bool> pause_requested{false};
    std::atomic<bool> quit{false};
    std::thread commands([&] {
        for (std::string line; std::getline(std::cin, line);) {
            if (line == "go")
                publishing = true;
            if (line == "pause")
                pause_requested = true;
        }
        quit = true;
    });
    std::vector<zmq::pollitem_t> items;
    for (auto& p : pubs) items.push_back({p.router->handle(), 0, ZMQ_POLLIN, 0});
    // Each publisher sends once per period, spread over the period's 1-ms slots.
    constexpr int kSlots = 1000 / kBatchesPerSecond;
    auto next_tick = Clock::now();
    int slot = 0;
    while (!quit) {
        zmq::poll(items.data(), items.size(), 1ms);
        for (std::size_t i = 0; i < n; ++i) {
            if ((items[i].revents & ZMQ_POLLIN) != 0)
                serve_replay(pubs[i], payloads);
        }
        if (pause_requested) {
            publishing = false;
            pause_requested = false;
            std::ostringstream line;
            line << "PUBLISHED";
            for (const auto& p : pubs) line << ' ' << p.next_seq;
            std::cout << line.str() << std::endl;
        }
        while (Clock::now() >= next_tick) {
            if (publishing) {
                for (std::size_t i = static_cast<std::size_t>(slot); i < n; i += kSlots) {
                    BenchPublisher& p = pubs[i];
                    const double ts = wall_seconds();
                    p.ts_ring[p.next_seq % kReplayBuffer] = ts;
                    p.pub->send(zmq::buffer(p.topic), zmq::send_flags::sndmore);
                    p.pub->send(zmq::buffer(kvevents::detail::be_u64(p.next_seq)),
                                zmq::send_flags::sndmore);
                    p.pub->send(zmq::buffer(payloads.make(p.next_seq, ts)), zmq::send_flags::none);
                    ++p.next_seq;
                }
            }
            slot = (slot + 1) % kSlots;
            next_tick += 1ms;
        }
    }
    commands.join();
    return 0;
}

// ================================================================================================
// The measuring process.

class PublisherProcess {
public:
    PublisherProcess(const char* self, std::size_t n, std::size_t history) {
        int to_child[2];
        int from_child[2];
        if (pipe(to_child) != 0 || pipe(from_child) != 0)
            throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ == 0) {
            dup2(to_child[0], 0);
            dup2(from_child[1], 1);
            close(to_child[1]);
            close(from_child[0]);
            const std::string count = std::to_string(n);
            const std::string hist = std::to_string(history);
            execl(self, self, "--serve", count.c_str(), "--history", hist.c_str(),
                  static_cast<char*>(nullptr));
            _exit(127);
        }
        close(to_child[0]);
        close(from_child[1]);
        in_ = fdopen(to_child[1], "w");
        out_ = fdopen(from_child[0], "r");
        for (std::string line = read_line(); line != "READY"; line = read_line()) {
            std::istringstream words(line);
            std::string tag, live, replay;
            words >> tag >> live >> replay;
            if (tag != "ENDPOINT")
                throw std::runtime_error("publisher process: unexpected '" + line + "'");
            endpoints.emplace_back(live, replay);
        }
    }
    ~PublisherProcess() {
        fclose(in_);  // end of input: the child exits
        int status = 0;
        waitpid(pid_, &status, 0);
        fclose(out_);
    }
    void command(const char* line) {
        std::fprintf(in_, "%s\n", line);
        std::fflush(in_);
    }
    // Stops publishing; every publisher's next sequence (what it has published).
    std::vector<std::uint64_t> pause() {
        command("pause");
        std::istringstream words(read_line());
        std::string tag;
        words >> tag;
        std::vector<std::uint64_t> published;
        for (std::uint64_t s; words >> s;) published.push_back(s);
        return published;
    }

    std::vector<std::pair<std::string, std::string>> endpoints;

private:
    std::string read_line() {
        std::string line;
        for (int c; (c = std::fgetc(out_)) != EOF && c != '\n';)
            line.push_back(static_cast<char>(c));
        if (line.empty() && std::feof(out_))
            throw std::runtime_error("the publisher process ended");
        return line;
    }
    pid_t pid_ = -1;
    FILE* in_ = nullptr;
    FILE* out_ = nullptr;
};

// What every publisher delivered: counts, order, and delivery delays of live batches.
class CountingHandler final : public kvevents::EventHandler {
public:
    explicit CountingHandler(std::size_t n) : pubs_(n) {}

    void on_batch(kvevents::ReceivedBatch& b) override {
        const std::size_t i = index_of(b.pod_key);
        PerPublisher& p = pubs_[i];
        const auto last = p.last.load(std::memory_order_relaxed);
        if (last != kNone && b.sequence != last + 1)
            p.out_of_order.fetch_add(1, std::memory_order_relaxed);
        p.last.store(b.sequence, std::memory_order_relaxed);
        p.delivered.fetch_add(1, std::memory_order_relaxed);
        total_.fetch_add(1, std::memory_order_relaxed);
        events_.fetch_add(b.batch.events.size(), std::memory_order_relaxed);
        if (!b.replayed && sampling_) {
            const double delay = wall_seconds() - b.batch.ts;
            std::lock_guard<std::mutex> lock(mu_);
            if (delays_.size() < 5'000'000)
                delays_.push_back(delay);
        }
    }
    void on_notice(const kvevents::StreamNotice& n) override {
        using Kind = kvevents::StreamNotice::Kind;
        if (n.kind == Kind::kUnrecoverableGap || n.kind == Kind::kPublisherRestarted ||
            n.kind == Kind::kContinuityLost)
            notices_.fetch_add(1, std::memory_order_relaxed);
    }

    static std::string key_of(std::size_t i) { return "p" + std::to_string(i); }

    std::uint64_t delivered(std::size_t i) const { return pubs_[i].delivered; }
    std::uint64_t last(std::size_t i) const { return pubs_[i].last; }
    std::uint64_t out_of_order(std::size_t i) const { return pubs_[i].out_of_order; }
    std::uint64_t total() const { return total_; }
    std::uint64_t events() const { return events_; }
    std::uint64_t loss_notices() const { return notices_; }
    void sample_delays(bool on) { sampling_ = on; }
    std::vector<double> take_delays() {
        std::lock_guard<std::mutex> lock(mu_);
        return std::exchange(delays_, {});
    }
    static constexpr std::uint64_t kNone = ~std::uint64_t{0};

private:
    struct PerPublisher {
        std::atomic<std::uint64_t> delivered{0};
        std::atomic<std::uint64_t> last{kNone};
        std::atomic<std::uint64_t> out_of_order{0};
    };
    static std::size_t index_of(const std::string& key) {
        std::size_t i = 0;
        std::from_chars(key.data() + 1, key.data() + key.size(), i);
        return i;
    }
    std::vector<PerPublisher> pubs_;
    std::atomic<std::uint64_t> total_{0};
    std::atomic<std::uint64_t> events_{0};
    std::atomic<std::uint64_t> notices_{0};
    std::atomic<bool> sampling_{false};
    std::mutex mu_;
    std::vector<double> delays_;
};

// --- process measurements ----------------------------------------------------------------------

using kvevents::bench::peak_rss_mib;
using kvevents::bench::percentile;
using kvevents::bench::reset_peak_rss;
using kvevents::bench::rss_mib;

int threads() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Threads:", 0) == 0)
            return std::stoi(line.substr(8));
    }
    return 0;
}

int descriptors() {
    int n = 0;
    if (DIR* dir = opendir("/proc/self/fd")) {
        while (readdir(dir) != nullptr) ++n;
        closedir(dir);
    }
    return n - 3;  // ".", ".." and the directory's own descriptor
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

// --- the two designs -----------------------------------------------------------------------------

kvevents::ClientOptions publisher_options(std::size_t i,
                                          const std::pair<std::string, std::string>& e) {
    kvevents::ClientOptions o;
    o.pod_key = CountingHandler::key_of(i);
    o.model_name = "model";
    o.endpoint = e.first;
    o.replay_endpoint = e.second;
    o.start_sequence = std::nullopt;  // live from now; gaps are still replayed
    return o;
}

// Follows publishers: a Fleet, or one ZmqClient each.
class Design {
public:
    virtual ~Design() = default;
    virtual void add(kvevents::ClientOptions options) = 0;
    virtual void remove(std::size_t i) = 0;
    virtual std::size_t connected() const = 0;
    virtual void stop() = 0;
};

class FleetDesign final : public Design {
public:
    FleetDesign(kvevents::EventHandler& handler, std::size_t max_replays, bool read_tcp_directly)
        : fleet_(options(max_replays, read_tcp_directly), handler) {}
    void add(kvevents::ClientOptions o) override { fleet_.add(std::move(o)); }
    void remove(std::size_t i) override { fleet_.remove(CountingHandler::key_of(i)); }
    std::size_t connected() const override { return fleet_.stats().connected; }
    void stop() override { fleet_.stop(); }

private:
    static kvevents::FleetOptions options(std::size_t max_replays, bool read_tcp_directly) {
        kvevents::FleetOptions o;
        o.max_concurrent_replays = max_replays;
        o.read_tcp_directly = read_tcp_directly;
        return o;
    }
    kvevents::Fleet fleet_;
};

class ClientPerPublisher final : public Design {
public:
    explicit ClientPerPublisher(kvevents::EventHandler& handler) : handler_(handler) {}
    void add(kvevents::ClientOptions o) override {
        const std::size_t i = std::stoul(o.pod_key.substr(1));
        if (clients_.size() <= i)
            clients_.resize(i + 1);
        clients_[i] = std::make_unique<kvevents::ZmqClient>(std::move(o), handler_);
        clients_[i]->Start();
    }
    void remove(std::size_t i) override { clients_[i].reset(); }
    std::size_t connected() const override {
        std::size_t n = 0;
        for (const auto& c : clients_)
            n += c && c->stats().state == kvevents::ConnectionState::kConnected ? 1U : 0U;
        return n;
    }
    void stop() override { clients_.clear(); }

private:
    kvevents::EventHandler& handler_;
    std::vector<std::unique_ptr<kvevents::ZmqClient>> clients_;
};

std::unique_ptr<Design> make_design(const std::string& name,
                                    kvevents::EventHandler& handler,
                                    const Flags& flags) {
    if (name == "fleet" || name == "fleet-libzmq")
        return std::make_unique<FleetDesign>(handler, flags.max_replays, name == "fleet");
    return std::make_unique<ClientPerPublisher>(handler);
}

// Batches of publishers [from, to) missing at the end of their streams, plus any delivered out of
// order, plus every loss, restart or continuity notice: 0 when everything arrived once, in order.
std::uint64_t losses(const CountingHandler& h,
                     const std::vector<std::uint64_t>& published,
                     std::size_t from,
                     std::size_t to) {
    std::uint64_t lost = 0;
    for (std::size_t i = from; i < to; ++i) {
        if (published[i] == 0)
            continue;
        const std::uint64_t last = h.last(i);
        if (last == CountingHandler::kNone) {
            lost += published[i];
        } else if (last + 1 < published[i]) {
            lost += published[i] - 1 - last;
        }
        lost += h.out_of_order(i);
    }
    return lost + h.loss_notices();
}

struct RunResult {
    std::string design;
    std::size_t n = 0;
    double start_ms = 0;
    int threads = 0;
    int descriptors = 0;
    double idle_rss_mib = 0;  // connected, nothing published yet
    double rss_mib = 0;       // after the busy period
    double idle_cpu_pct = 0;
    double busy_cpu_pct = 0;
    double events_per_s = 0;
    double p50_ms = 0;
    double p99_ms = 0;
    double stop_ms = 0;
    std::uint64_t losses = 0;
};

RunResult measure(const std::string& name, std::size_t n, const Flags& flags, const char* self) {
    PublisherProcess pubs(self, n, 0);
    CountingHandler handler(n);
    RunResult r;
    r.design = name;
    r.n = n;
    const int threads_before = threads();
    const int fds_before = descriptors();
    const double rss_before = rss_mib();
    auto design = make_design(name, handler, flags);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) design->add(publisher_options(i, pubs.endpoints[i]));
    if (!wait_until([&] { return design->connected() == n; }, 120s))
        std::cerr << "  not every publisher connected\n";
    r.start_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.threads = threads() - threads_before;
    r.descriptors = descriptors() - fds_before;
    r.idle_rss_mib = rss_mib() - rss_before;

    const double idle_cpu = cpu_seconds();
    const auto idle_t = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(flags.idle_seconds));
    r.idle_cpu_pct = 100.0 * (cpu_seconds() - idle_cpu) /
                     std::chrono::duration<double>(Clock::now() - idle_t).count();

    pubs.command("go");
    // Subscriptions are up; the first second settles the slow joiners' first batches.
    std::this_thread::sleep_for(1s);
    handler.sample_delays(true);
    const double busy_cpu = cpu_seconds();
    const std::uint64_t events_before = handler.events();
    const auto busy_t = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(flags.busy_seconds));
    const double busy_wall = std::chrono::duration<double>(Clock::now() - busy_t).count();
    r.busy_cpu_pct = 100.0 * (cpu_seconds() - busy_cpu) / busy_wall;
    r.events_per_s = static_cast<double>(handler.events() - events_before) / busy_wall;
    handler.sample_delays(false);
    r.rss_mib = rss_mib() - rss_before;
    const auto published = pubs.pause();
    wait_until(
        [&] {
            for (std::size_t i = 0; i < n; ++i)
                if (handler.last(i) == CountingHandler::kNone || handler.last(i) + 1 < published[i])
                    return false;
            return true;
        },
        30s);
    r.losses = losses(handler, published, 0, n);
    const auto delays = handler.take_delays();
    r.p50_ms = percentile(delays, 0.50) * 1e3;
    r.p99_ms = percentile(delays, 0.99) * 1e3;
    const auto stop_t = Clock::now();
    design->stop();
    design.reset();
    r.stop_ms = std::chrono::duration<double, std::milli>(Clock::now() - stop_t).count();
    return r;
}

struct ChurnResult {
    std::string design;
    std::size_t n = 0;
    double replace_ms = 0;
    std::uint64_t losses_on_others = 0;
};

// n publishers followed; half are replaced by others while all publish.
ChurnResult churn(const std::string& name, std::size_t n, const Flags& flags, const char* self) {
    const std::size_t half = n / 2;
    PublisherProcess pubs(self, n + half, 0);
    CountingHandler handler(n + half);
    auto design = make_design(name, handler, flags);
    for (std::size_t i = 0; i < n; ++i) design->add(publisher_options(i, pubs.endpoints[i]));
    wait_until([&] { return design->connected() == n; }, 60s);
    pubs.command("go");
    std::this_thread::sleep_for(2s);
    const auto t0 = Clock::now();
    for (std::size_t i = half; i < n; ++i) {
        design->remove(i);
        design->add(publisher_options(i + half, pubs.endpoints[i + half]));
    }
    ChurnResult r;
    r.design = name;
    r.n = n;
    r.replace_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::this_thread::sleep_for(2s);
    const auto published = pubs.pause();
    wait_until(
        [&] {
            for (std::size_t i = 0; i < half; ++i)
                if (handler.last(i) + 1 < published[i])
                    return false;
            return true;
        },
        30s);
    r.losses_on_others = losses(handler, published, 0, half);
    design->stop();
    return r;
}

struct StormResult {
    std::size_t n = 0;
    std::size_t history = 0;
    double recovery_s = 0;
    double peak_rss_mib = 0;
    std::uint64_t losses = 0;
};

// n publishers each holding `history` batches; the fleet starts with a start-up replay from 0.
StormResult storm(std::size_t n, std::size_t history, const Flags& flags, const char* self) {
    PublisherProcess pubs(self, n, history);
    CountingHandler handler(n);
    reset_peak_rss();
    StormResult r;
    r.n = n;
    r.history = history;
    const auto t0 = Clock::now();
    {
        FleetDesign fleet(handler, flags.max_replays, true);
        for (std::size_t i = 0; i < n; ++i) {
            kvevents::ClientOptions o = publisher_options(i, pubs.endpoints[i]);
            o.start_sequence = 0;
            fleet.add(std::move(o));
        }
        wait_until(
            [&] {
                for (std::size_t i = 0; i < n; ++i)
                    if (handler.delivered(i) < history)
                        return false;
                return true;
            },
            600s);
        r.recovery_s = std::chrono::duration<double>(Clock::now() - t0).count();
        r.peak_rss_mib = peak_rss_mib();
        const std::vector<std::uint64_t> published(n, history);
        r.losses = losses(handler, published, 0, n);
        fleet.stop();
    }
    return r;
}

void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const Flags flags = parse_flags(argc, argv);
    raise_descriptor_limit();
    if (flags.serve)
        return serve(*flags.serve, flags.history);
    std::signal(SIGPIPE, SIG_IGN);
    const char* self = "/proc/self/exe";
    std::string self_path(4096, '\0');
    const ssize_t len = readlink(self, self_path.data(), self_path.size() - 1);
    self_path.resize(len > 0 ? static_cast<std::size_t>(len) : 0);

    std::ostringstream json;
    json << "{\"runs\":[";
    bool first = true;
    for (const std::size_t n : flags.sizes) {
        for (const std::string& name : flags.designs) {
            std::cerr << "measuring " << name << " with " << n << " publishers...\n";
            const RunResult r = measure(name, n, flags, self_path.c_str());
            std::cerr << "  start " << r.start_ms << " ms, threads " << r.threads << ", fds "
                      << r.descriptors << ", rss idle " << r.idle_rss_mib << " MiB, busy "
                      << r.rss_mib << " MiB, idle cpu " << r.idle_cpu_pct << "%, busy cpu "
                      << r.busy_cpu_pct << "% at " << r.events_per_s << " events/s, delay p50 "
                      << r.p50_ms << " ms p99 " << r.p99_ms << " ms, stop " << r.stop_ms
                      << " ms, losses " << r.losses << '\n';
            json << (first ? "" : ",") << "{\"design\":\"" << r.design << "\",\"n\":" << r.n
                 << ",\"start_ms\":" << r.start_ms << ",\"threads\":" << r.threads
                 << ",\"descriptors\":" << r.descriptors << ",\"idle_rss_mib\":" << r.idle_rss_mib
                 << ",\"rss_mib\":" << r.rss_mib << ",\"idle_cpu_pct\":" << r.idle_cpu_pct
                 << ",\"busy_cpu_pct\":" << r.busy_cpu_pct << ",\"events_per_s\":" << r.events_per_s
                 << ",\"delay_p50_ms\":" << r.p50_ms << ",\"delay_p99_ms\":" << r.p99_ms
                 << ",\"stop_ms\":" << r.stop_ms << ",\"losses\":" << r.losses << '}';
            first = false;
        }
    }
    json << "],\"churn\":[";
    if (flags.churn >= 2) {
        first = true;
        for (const std::string& name : flags.designs) {
            std::cerr << "churn: " << name << ", " << flags.churn / 2 << " of " << flags.churn
                      << " publishers replaced while all publish...\n";
            const ChurnResult c = churn(name, flags.churn, flags, self_path.c_str());
            std::cerr << "  replaced in " << c.replace_ms << " ms, losses on the others "
                      << c.losses_on_others << '\n';
            json << (first ? "" : ",") << "{\"design\":\"" << c.design << "\",\"n\":" << c.n
                 << ",\"replace_ms\":" << c.replace_ms
                 << ",\"losses_on_others\":" << c.losses_on_others << '}';
            first = false;
        }
    }
    json << "]";
    if (flags.storm > 0) {
        std::cerr << "replay storm: " << flags.storm << " publishers with " << flags.storm_history
                  << " batches each, at most " << flags.max_replays << " replays at once...\n";
        const StormResult s = storm(flags.storm, flags.storm_history, flags, self_path.c_str());
        std::cerr << "  recovered in " << s.recovery_s << " s, peak rss " << s.peak_rss_mib
                  << " MiB, losses " << s.losses << '\n';
        json << ",\"storm\":{\"n\":" << s.n << ",\"history\":" << s.history
             << ",\"max_replays\":" << flags.max_replays << ",\"recovery_s\":" << s.recovery_s
             << ",\"peak_rss_mib\":" << s.peak_rss_mib << ",\"losses\":" << s.losses << '}';
    }
    json << ",\"cores\":" << std::thread::hardware_concurrency() << "}";
    std::cout << json.str() << std::endl;
    if (flags.output)
        std::ofstream(*flags.output) << json.str() << '\n';
    return 0;
}

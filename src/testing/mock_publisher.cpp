#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>

#include <zmq.hpp>

#include <kvevents/testing/mock_publisher.h>

#include "../endpoint_syntax.h"
#include "../wire_frames.h"
#include "../zmq_receive.h"

namespace kvevents::testing {

struct MockPublisher::Impl {
    explicit Impl(MockPublisherOptions opts) : options(std::move(opts)) {}

    MockPublisherOptions options;
    zmq::context_t context;
    std::unique_ptr<zmq::socket_t> pub;
    std::string bound_endpoint;
    std::string bound_replay_endpoint;

    mutable std::mutex mu;  // guards everything below
    std::uint64_t next_seq = 0;
    std::deque<std::pair<std::uint64_t, std::string>> history;
    std::set<std::uint64_t> drops;
    double drop_probability = 0;
    std::mt19937_64 rng;
    bool replay_enabled = true;
    std::size_t replays_served = 0;
    std::size_t replays_ignored = 0;

    std::atomic<bool> replay_stop{false};
    std::thread replay_thread;

    void open() {
        pub = std::make_unique<zmq::socket_t>(context, zmq::socket_type::xpub);
        pub->set(zmq::sockopt::linger, 0);
        pub->set(zmq::sockopt::sndhwm, 100000);
        pub->set(zmq::sockopt::ipv6, detail::has_ipv6_literal(options.endpoint));
        if (options.report_every_subscription)
            pub->set(zmq::sockopt::xpub_verbose, 1);
        const std::string& where = bound_endpoint.empty() ? options.endpoint : bound_endpoint;
        if (options.connect) {
            pub->connect(where);
            bound_endpoint = where;
        } else {
            pub->bind(where);
            bound_endpoint = pub->get(zmq::sockopt::last_endpoint);
        }
        if (!options.replay_endpoint.empty()) {
            start_replay_server();
        }
    }

    void start_replay_server() {
        // The ROUTER is created, used and closed on the replay thread; the bound endpoint comes
        // back through the promise so callers can read it at once.
        std::promise<std::string> bound;
        auto bound_future = bound.get_future();
        replay_stop = false;
        const std::string where =
            bound_replay_endpoint.empty() ? options.replay_endpoint : bound_replay_endpoint;
        replay_thread = std::thread(
            [this, where, bound = std::move(bound)]() mutable { serve_replay(where, bound); });
        try {
            bound_replay_endpoint = bound_future.get();
        } catch (...) {
            replay_thread.join();
            throw;
        }
    }

    void serve_replay(const std::string& where, std::promise<std::string>& bound) {
        zmq::socket_t router(context, zmq::socket_type::router);
        router.set(zmq::sockopt::linger, 0);
        // Drops past a bound are injected deterministically (replay_drop_after); libzmq's own
        // send limit would add random ones, so it is lifted.
        router.set(zmq::sockopt::sndhwm, 0);
        router.set(zmq::sockopt::ipv6, detail::has_ipv6_literal(where));
        try {
            router.bind(where);
        } catch (...) {
            bound.set_exception(std::current_exception());
            return;
        }
        bound.set_value(router.get(zmq::sockopt::last_endpoint));
        while (!replay_stop) {
            zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::chrono::milliseconds(10));
            if ((item.revents & ZMQ_POLLIN) == 0)
                continue;
            std::vector<zmq::message_t> request;
            if (detail::receive_message(router, request)) {
                answer(router, request);
            }
        }
    }

    void answer(zmq::socket_t& router, const std::vector<zmq::message_t>& request) {
        // vLLM: [identity, "", start]; anything else gets no reply at all.
        if (request.size() != 3)
            return;
        std::vector<std::pair<std::uint64_t, std::string>> batches;
        {
            std::lock_guard<std::mutex> lock(mu);
            if (!replay_enabled) {
                ++replays_ignored;
                return;
            }
            ++replays_served;
            // vLLM reads the start as an unsigned integer of any length: one wider than 64 bits
            // with a non-zero high part is past every sequence.
            const std::string_view start_bytes = request[2].to_string_view();
            const bool beyond_64_bits =
                start_bytes.size() > 8 &&
                start_bytes.substr(0, start_bytes.size() - 8).find_first_not_of('\0') !=
                    std::string_view::npos;
            const std::uint64_t start =
                beyond_64_bits ? detail::kReplayEndSequence : detail::read_be_u64(start_bytes);
            for (const auto& entry : history) {
                if (entry.first >= start)
                    batches.push_back(entry);
            }
        }
        const std::size_t limit = options.replay_drop_after;
        std::size_t sent = 0;
        const bool with_topic = options.replay_envelope == ReplayEnvelope::kWithTopic;
        auto send = [&](const std::string& topic, std::uint64_t seq, const std::string& payload) {
            if (limit != 0 && sent >= limit)
                return;  // dropped past the ROUTER's HWM
            ++sent;
            router.send(zmq::buffer(request[0].to_string_view()), zmq::send_flags::sndmore);
            router.send(zmq::message_t(), zmq::send_flags::sndmore);
            if (with_topic)
                router.send(zmq::buffer(topic), zmq::send_flags::sndmore);
            router.send(zmq::buffer(detail::be_u64(seq)), zmq::send_flags::sndmore);
            router.send(zmq::buffer(payload), zmq::send_flags::none);
        };
        for (const auto& [seq, payload] : batches) send(options.topic, seq, payload);
        send("", detail::kReplayEndSequence, "");
    }

    void stop_replay_server() {
        if (replay_thread.joinable()) {
            replay_stop = true;
            replay_thread.join();
        }
    }

    void send_live(std::uint64_t seq, const std::string& payload) {
        if (!pub)
            throw std::logic_error("MockPublisher is closed");
        pub->send(zmq::buffer(options.topic), zmq::send_flags::sndmore);
        pub->send(zmq::buffer(detail::be_u64(seq)), zmq::send_flags::sndmore);
        pub->send(zmq::buffer(payload), zmq::send_flags::none);
    }
};

MockPublisher::MockPublisher(MockPublisherOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
    impl_->open();
}

MockPublisher::~MockPublisher() {
    close();
}

std::string MockPublisher::endpoint() const {
    return impl_->bound_endpoint;
}

std::string MockPublisher::replay_endpoint() const {
    return impl_->bound_replay_endpoint;
}

bool MockPublisher::wait_for_subscriber(std::chrono::milliseconds timeout) {
    if (!impl_->pub)
        return false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() < 0)
            return false;
        zmq::pollitem_t item{impl_->pub->handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, left);
        zmq::message_t msg;
        if ((item.revents & ZMQ_POLLIN) != 0 && impl_->pub->recv(msg, zmq::recv_flags::dontwait) &&
            !msg.empty() && static_cast<const std::uint8_t*>(msg.data())[0] == 1) {
            return true;  // 0x01 + topic: a subscription
        }
    }
}

std::uint64_t MockPublisher::publish(const EventBatch& batch) {
    if (batch.data_parallel_rank || !impl_->options.data_parallel_rank) {
        return publish_payload(encode_batch(batch, impl_->options.encoding));
    }
    EventBatch stamped = batch;
    stamped.data_parallel_rank = impl_->options.data_parallel_rank;
    return publish_payload(encode_batch(stamped, impl_->options.encoding));
}

std::uint64_t MockPublisher::publish_payload(const std::string& payload) {
    std::uint64_t seq = 0;
    bool send = true;
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        seq = impl_->next_seq++;
        impl_->history.emplace_back(seq, payload);
        while (impl_->history.size() > impl_->options.buffer_steps) impl_->history.pop_front();
        if (impl_->drops.erase(seq) != 0)
            send = false;
        if (impl_->drop_probability > 0 &&
            std::bernoulli_distribution(impl_->drop_probability)(impl_->rng)) {
            send = false;
        }
    }
    if (send)
        impl_->send_live(seq, payload);
    return seq;
}

std::uint64_t MockPublisher::next_sequence() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->next_seq;
}

void MockPublisher::drop_live(const std::set<std::uint64_t>& sequences) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->drops.insert(sequences.begin(), sequences.end());
}

void MockPublisher::drop_live_randomly(double probability, std::uint64_t seed) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->drop_probability = probability;
    impl_->rng.seed(seed);
}

void MockPublisher::send_raw_frames(const std::vector<std::string>& frames) {
    if (!impl_->pub)
        throw std::logic_error("MockPublisher is closed");
    for (std::size_t i = 0; i < frames.size(); ++i) {
        impl_->pub->send(zmq::buffer(frames[i]),
                         i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

void MockPublisher::set_replay_enabled(bool enabled) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->replay_enabled = enabled;
}

void MockPublisher::restart() {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->next_seq = 0;
    impl_->history.clear();
}

void MockPublisher::close() {
    impl_->stop_replay_server();
    impl_->pub.reset();
}

void MockPublisher::reopen(bool keep_history) {
    close();
    if (!keep_history)
        restart();
    impl_->open();
}

std::size_t MockPublisher::replays_served() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->replays_served;
}

std::size_t MockPublisher::replays_ignored() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->replays_ignored;
}

}  // namespace kvevents::testing

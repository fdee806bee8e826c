#include <algorithm>
#include <chrono>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>

#include <prometheus/client_metric.h>

#include <kvevents/prometheus.h>

#include "../delivery_lag.h"

namespace kvevents::prometheus {

namespace {

using ::prometheus::ClientMetric;
using ::prometheus::MetricFamily;
using ::prometheus::MetricType;

struct CounterField {
    const char* name;
    const char* help;
    std::uint64_t ClientStats::*field;
};

// Every ClientStats counter, in the order the struct declares them.
constexpr CounterField kCounters[] = {
    {"kvevents_batches_total", "Batches delivered to the handler", &ClientStats::batches},
    {"kvevents_events_total", "Events delivered to the handler", &ClientStats::events},
    {"kvevents_bytes_total", "Payload bytes received, live and replay", &ClientStats::bytes},
    {"kvevents_decode_errors_total", "Payloads, events or frames that failed to decode",
     &ClientStats::decode_errors},
    {"kvevents_unknown_events_total", "Events with an unknown tag, skipped",
     &ClientStats::unknown_events},
    {"kvevents_gaps_detected_total", "Sequence jumps on the live stream",
     &ClientStats::gaps_detected},
    {"kvevents_replays_requested_total", "Replay requests sent", &ClientStats::replays_requested},
    {"kvevents_replays_completed_total", "Replays that reached their end marker",
     &ClientStats::replays_completed},
    {"kvevents_replays_failed_total", "Replays timed out, unsendable or abandoned",
     &ClientStats::replays_failed},
    {"kvevents_batches_recovered_total", "Batches delivered from replay",
     &ClientStats::batches_recovered},
    {"kvevents_batches_unrecoverable_total", "Batches announced lost",
     &ClientStats::batches_unrecoverable},
    {"kvevents_duplicates_dropped_total", "Batches received twice (replay and live overlap)",
     &ClientStats::duplicates_dropped},
    {"kvevents_live_dropped_while_buffering_total",
     "Live batches dropped from a full hold buffer (refetched or announced)",
     &ClientStats::live_dropped_while_buffering},
    {"kvevents_restarts_total", "Publisher restarts announced", &ClientStats::restarts},
    {"kvevents_continuity_lost_total", "Continuity-lost notices", &ClientStats::continuity_lost},
    {"kvevents_reconnects_total", "Reconnections of the live socket", &ClientStats::reconnects},
    {"kvevents_handler_errors_total", "Handler calls that threw", &ClientStats::handler_errors},
    {"kvevents_wakeups_total", "Wake-ups of the client's loop", &ClientStats::wakeups},
};

constexpr ConnectionState kStates[] = {ConnectionState::kConnecting, ConnectionState::kConnected,
                                       ConnectionState::kDisconnected, ConnectionState::kStopped,
                                       ConnectionState::kFailed};

std::vector<ClientMetric::Label> labels_of(const std::string& pod,
                                           int rank,
                                           const std::string& model) {
    return {{"model", model}, {"pod", pod}, {"rank", std::to_string(rank)}};
}

MetricFamily family(const char* name, const char* help, MetricType type) {
    MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
}

ClientMetric sample(std::vector<ClientMetric::Label> labels) {
    ClientMetric m;
    m.label = std::move(labels);
    return m;
}

}  // namespace

class ClientMetrics::LagObserver final : public EventHandler {
public:
    LagObserver(EventHandler& inner, std::shared_ptr<::prometheus::Histogram> lags)
        : inner_(inner), lags_(std::move(lags)) {}

    void on_batch(ReceivedBatch& batch) override {
        if (const auto lag = detail::plausible_lag_since(batch.batch.ts))
            lags_->Observe(std::chrono::duration<double>(*lag).count());
        inner_.on_batch(batch);
    }
    void on_notice(const StreamNotice& notice) override { inner_.on_notice(notice); }

private:
    EventHandler& inner_;
    const std::shared_ptr<::prometheus::Histogram> lags_;
};

class ClientMetrics::LabelledLagObserver final : public EventHandler {
public:
    LabelledLagObserver(EventHandler& inner, ClientMetrics& metrics)
        : inner_(inner), metrics_(metrics) {}

    void on_batch(ReceivedBatch& batch) override {
        if (const auto lag = detail::plausible_lag_since(batch.batch.ts)) {
            std::shared_ptr<::prometheus::Histogram> lags;
            {
                std::lock_guard<std::mutex> lock(mu_);
                SeriesKey key{batch.pod_key, batch.data_parallel_rank, batch.model_name};
                auto& held = held_[key];
                if (!held)
                    held = metrics_.histogram_for(key);
                lags = held;
            }
            lags->Observe(std::chrono::duration<double>(*lag).count());
        }
        inner_.on_batch(batch);
    }
    void on_notice(const StreamNotice& notice) override { inner_.on_notice(notice); }

private:
    EventHandler& inner_;
    ClientMetrics& metrics_;
    std::mutex mu_;
    // Keeps each series' histogram alive while this observer may feed it.
    std::map<SeriesKey, std::shared_ptr<::prometheus::Histogram>> held_;
};

std::vector<double> ClientMetrics::default_lag_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

ClientMetrics::ClientMetrics(std::vector<double> lag_buckets) : buckets_(std::move(lag_buckets)) {}

ClientMetrics::~ClientMetrics() = default;

ClientMetrics::SeriesKey ClientMetrics::key_of(const ClientOptions& options) {
    return {options.pod_key, options.data_parallel_rank, options.model_name};
}

void ClientMetrics::track(const ZmqClient& client) {
    std::lock_guard<std::mutex> lock(mu_);
    const SeriesKey key = key_of(client.options());
    for (const auto& [other, options] : clients_) {
        if (other != &client && key_of(*options) == key) {
            throw std::invalid_argument(
                "ClientMetrics already tracks a client labelled pod=" + std::get<0>(key) +
                ", rank=" + std::to_string(std::get<1>(key)) + ", model=" + std::get<2>(key));
        }
    }
    clients_[&client] = &client.options();
}

void ClientMetrics::untrack(const ZmqClient& client) {
    std::lock_guard<std::mutex> lock(mu_);
    clients_.erase(&client);
}

void ClientMetrics::track(const Fleet& fleet) {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::find(fleets_.begin(), fleets_.end(), &fleet) == fleets_.end())
        fleets_.push_back(&fleet);
}

void ClientMetrics::untrack(const Fleet& fleet) {
    std::lock_guard<std::mutex> lock(mu_);
    fleets_.erase(std::remove(fleets_.begin(), fleets_.end(), &fleet), fleets_.end());
}

std::shared_ptr<::prometheus::Histogram> ClientMetrics::histogram_for(const SeriesKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = lags_.begin(); it != lags_.end();)  // series nobody feeds any more
        it = it->second.expired() ? lags_.erase(it) : std::next(it);
    std::shared_ptr<::prometheus::Histogram> lags = lags_[key].lock();
    if (!lags) {
        lags = std::make_shared<::prometheus::Histogram>(buckets_);
        lags_[key] = lags;
    }
    return lags;
}

std::unique_ptr<EventHandler> ClientMetrics::lag_observer(EventHandler& inner,
                                                          const ClientOptions& options) {
    return std::make_unique<LagObserver>(inner, histogram_for(key_of(options)));
}

std::unique_ptr<EventHandler> ClientMetrics::lag_observer(EventHandler& inner) {
    return std::make_unique<LabelledLagObserver>(inner, *this);
}

std::vector<MetricFamily> ClientMetrics::Collect() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<MetricFamily> out;
    for (const CounterField& c : kCounters)
        out.push_back(family(c.name, c.help, MetricType::Counter));
    MetricFamily last_sequence =
        family("kvevents_last_sequence", "Sequence of the last batch delivered", MetricType::Gauge);
    MetricFamily state = family("kvevents_connection_state",
                                "1 for the client's current connection state", MetricType::Gauge);
    MetricFamily ready =
        family("kvevents_ready", "1 once the start-up history is in and the live stream connected",
               MetricType::Gauge);
    MetricFamily lag =
        family("kvevents_delivery_lag_seconds", "Batch timestamp to handler call (wall clocks)",
               MetricType::Histogram);
    const auto add_series = [&](const SeriesKey& key, const ClientStats& stats) {
        const auto labels = labels_of(std::get<0>(key), std::get<1>(key), std::get<2>(key));
        for (std::size_t i = 0; i < std::size(kCounters); ++i) {
            ClientMetric m = sample(labels);
            m.counter.value = static_cast<double>(stats.*kCounters[i].field);
            out[i].metric.push_back(std::move(m));
        }
        if (stats.last_sequence) {
            ClientMetric m = sample(labels);
            m.gauge.value = static_cast<double>(*stats.last_sequence);
            last_sequence.metric.push_back(std::move(m));
        }
        for (const ConnectionState s : kStates) {
            auto with_state = labels;
            with_state.push_back({"state", to_string(s)});
            ClientMetric m = sample(std::move(with_state));
            m.gauge.value = stats.state == s ? 1 : 0;
            state.metric.push_back(std::move(m));
        }
        ClientMetric ready_sample = sample(labels);
        ready_sample.gauge.value = stats.ready ? 1 : 0;
        ready.metric.push_back(std::move(ready_sample));
        const auto it = lags_.find(key);
        if (const auto lags = it != lags_.end() ? it->second.lock() : nullptr) {
            ClientMetric m = lags->Collect();
            m.label = labels;
            lag.metric.push_back(std::move(m));
        }
    };
    for (const auto& [client, options] : clients_) add_series(key_of(*options), client->stats());
    for (const Fleet* fleet : fleets_) {
        for (const PublisherStatus& p : fleet->publishers())
            add_series({p.pod_key, p.data_parallel_rank, p.model_name}, p.stats);
    }
    out.push_back(std::move(last_sequence));
    out.push_back(std::move(state));
    out.push_back(std::move(ready));
    out.push_back(std::move(lag));
    return out;
}

}  // namespace kvevents::prometheus

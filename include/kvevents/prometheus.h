#pragma once

// Optional: the kvevents::prometheus target, built when prometheus-cpp is found. The core
// library does not depend on it.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>

#include <kvevents/event_handler.h>
#include <kvevents/fleet.h>
#include <kvevents/zmq_client.h>

namespace kvevents::prometheus {

/// Prometheus metrics for kvevents clients, labelled `pod` (pod_key), `rank`
/// (data_parallel_rank) and `model` (model_name):
/// - every ClientStats counter as `kvevents_<name>_total`, read from stats() at each scrape;
/// - `kvevents_last_sequence`, and `kvevents_connection_state{state=...}`: 1 for the current
///   state, 0 for the others;
/// - `kvevents_delivery_lag_seconds`, a histogram of batch ts to handler call (wall clocks, so
///   it includes clock skew between hosts), fed by the handler lag_observer() returns.
///
/// Register it with a prometheus::Exposer (or any registry that takes a Collectable):
///
///     auto metrics = std::make_shared<kvevents::prometheus::ClientMetrics>();
///     exposer.RegisterCollectable(metrics);
///     auto observed = metrics->lag_observer(handler, options);
///     kvevents::ZmqClient client(options, *observed);
///     metrics->track(client);
///
/// A Fleet is tracked as a whole: every publisher it follows at scrape time is a series, and
/// one lag_observer(handler) feeds the histograms of all of them, labelled from each batch.
///
///     kvevents::Fleet fleet(fleet_options, *metrics->lag_observer(handler));
///     metrics->track(fleet);
///
/// Thread-safe: scrapes, tracking and observations may come from any thread.
class ClientMetrics : public ::prometheus::Collectable {
public:
    /// Upper bounds of the lag histogram, in seconds.
    static std::vector<double> default_lag_buckets();

    explicit ClientMetrics(std::vector<double> lag_buckets = default_lag_buckets());
    ~ClientMetrics() override;

    /// Reports `client`'s statistics until untrack(); the client must stay alive until then.
    /// Throws std::invalid_argument if a tracked client already has the same pod, rank and model
    /// (Prometheus would reject the duplicate series).
    void track(const ZmqClient& client);
    /// Stops reporting the client.
    void untrack(const ZmqClient& client);
    /// Reports every publisher of `fleet` until untrack(); the fleet must stay alive until then.
    void track(const Fleet& fleet);
    void untrack(const Fleet& fleet);

    /// A handler that records each batch's delivery lag for the publisher `options` describes,
    /// then passes the call to `inner`. It must outlive the client it is given to. Batches with
    /// no plausible timestamp (in the future, over a day old) are not recorded.
    std::unique_ptr<EventHandler> lag_observer(EventHandler& inner, const ClientOptions& options);
    /// The same for any number of publishers (a fleet's handler): each batch is recorded in the
    /// series of its pod, rank and model.
    std::unique_ptr<EventHandler> lag_observer(EventHandler& inner);

    std::vector<::prometheus::MetricFamily> Collect() const override;

private:
    class LagObserver;
    class LabelledLagObserver;

    using SeriesKey = std::tuple<std::string, int, std::string>;  // pod, rank, model
    static SeriesKey key_of(const ClientOptions& options);
    std::shared_ptr<::prometheus::Histogram> histogram_for(const SeriesKey& key);

    const std::vector<double> buckets_;
    mutable std::mutex mu_;
    std::map<const ZmqClient*, const ClientOptions*> clients_;
    std::vector<const Fleet*> fleets_;
    // The lag histogram of each series lives as long as an observer feeding it, so a client
    // replaced by one with the same labels, or tracked again, keeps its history.
    std::map<SeriesKey, std::weak_ptr<::prometheus::Histogram>> lags_;
};

}  // namespace kvevents::prometheus

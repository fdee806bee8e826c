#include "metrics_server.h"

#include <stdexcept>

#include <prometheus/exposer.h>

#include <kvevents/prometheus.h>

namespace kvevents::cli {

struct MetricsServer::Impl {
    std::unique_ptr<::prometheus::Exposer> exposer;
    std::shared_ptr<prometheus::ClientMetrics> metrics =
        std::make_shared<prometheus::ClientMetrics>();
    std::unique_ptr<EventHandler> observer;
};

MetricsServer::MetricsServer(const std::string& address, int port)
    : impl_(std::make_unique<Impl>()) {
    const std::string where = address + ":" + std::to_string(port);
    try {
        impl_->exposer = std::make_unique<::prometheus::Exposer>(where);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot serve metrics on " + where + ": " + e.what());
    }
    impl_->exposer->RegisterCollectable(impl_->metrics);
}

MetricsServer::~MetricsServer() = default;

EventHandler& MetricsServer::observing(EventHandler& inner) {
    impl_->observer = impl_->metrics->lag_observer(inner);
    return *impl_->observer;
}

void MetricsServer::track(const Fleet& fleet) {
    impl_->metrics->track(fleet);
}

void MetricsServer::untrack(const Fleet& fleet) {
    impl_->metrics->untrack(fleet);
}

int MetricsServer::port() const {
    return impl_->exposer->GetListeningPorts().at(0);
}

}  // namespace kvevents::cli

#include <stdexcept>
#include <string>
#include <tuple>

#include <kvevents/client_options.h>

#include "endpoint_syntax.h"

namespace kvevents {
namespace {

// Throws naming the field (and the pod_ip it came from, if so) when libzmq could not use it.
void check_endpoint(const std::string& endpoint,
                    const char* field,
                    detail::EndpointUse use,
                    const ClientOptions& options) {
    const auto problem = detail::endpoint_problem(endpoint, use);
    if (!problem)
        return;
    const bool from_pod_ip = !options.pod_ip.empty() &&
                             endpoint.find(options.pod_ip) != std::string::npos &&
                             (std::string(field) == "endpoint" ? options.endpoint.empty()
                                                               : options.replay_endpoint.empty());
    if (from_pod_ip) {
        throw std::invalid_argument("ClientOptions.pod_ip '" + options.pod_ip + "' gives " + field +
                                    " '" + endpoint + "', which " + *problem);
    }
    throw std::invalid_argument(std::string("ClientOptions.") + field + " '" + endpoint + "' " +
                                *problem);
}

void check_positive(std::chrono::milliseconds value, const char* field) {
    if (value.count() <= 0) {
        throw std::invalid_argument(std::string("ClientOptions.") + field +
                                    " must be positive, got " + std::to_string(value.count()) +
                                    " ms");
    }
}

}  // namespace

bool same_settings(const ClientOptions& a, const ClientOptions& b) {
    const auto fields = [](const ClientOptions& o) {
        return std::tie(o.pod_key, o.model_name, o.endpoint, o.replay_endpoint, o.pod_ip,
                        o.replay_enabled, o.data_parallel_rank, o.topic_filter, o.bind,
                        o.start_sequence, o.replay_idle_timeout, o.replay_total_timeout,
                        o.replay_backoff_initial, o.replay_backoff_max, o.tail_probe_idle,
                        o.connect_warning_after, o.reconnect_interval, o.reconnect_interval_max,
                        o.tcp_keepalive, o.tcp_keepalive_idle, o.tcp_keepalive_interval,
                        o.tcp_keepalive_count, o.heartbeat_interval, o.heartbeat_timeout,
                        o.receive_hwm, o.max_message_size, o.max_buffered_batches, o.context,
                        o.logger, o.log_errors_per_second);
    };
    return fields(a) == fields(b);
}

std::string offset_endpoint_port(const std::string& endpoint, int rank) {
    if (rank < 0) {
        throw std::invalid_argument("data-parallel rank must not be negative, got " +
                                    std::to_string(rank));
    }
    if (rank == 0)
        return endpoint;
    if (endpoint.find("inproc") != std::string::npos) {
        return endpoint + "_dp" + std::to_string(rank);
    }
    if (endpoint.find("tcp") != std::string::npos) {
        const auto colon = endpoint.rfind(':');
        const std::string port_text = colon == std::string::npos ? "" : endpoint.substr(colon + 1);
        if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos ||
            port_text.size() > 5) {
            throw std::invalid_argument(
                "endpoint '" + endpoint +
                "' has no numeric port to offset by the data-parallel rank");
        }
        const int port = std::stoi(port_text) + rank;
        if (port > 65535) {
            throw std::invalid_argument("endpoint '" + endpoint + "' offset by rank " +
                                        std::to_string(rank) + " is past port 65535");
        }
        return endpoint.substr(0, colon + 1) + std::to_string(port);
    }
    throw std::invalid_argument("endpoint '" + endpoint +
                                "' cannot be offset by a data-parallel rank (only tcp and inproc)");
}

ResolvedEndpoints resolve_endpoints(const ClientOptions& options) {
    ResolvedEndpoints out;
    std::string live = options.endpoint;
    std::string replay = options.replay_endpoint;
    if (!options.pod_ip.empty()) {
        if (options.pod_ip.find_first_of("/ ") != std::string::npos) {
            throw std::invalid_argument("ClientOptions.pod_ip '" + options.pod_ip +
                                        "' must be a bare host or IP address");
        }
        // An IPv6 literal needs brackets in a tcp:// endpoint.
        const bool v6 =
            options.pod_ip.find(':') != std::string::npos && options.pod_ip.front() != '[';
        const std::string host = v6 ? "[" + options.pod_ip + "]" : options.pod_ip;
        if (live.empty())
            live = "tcp://" + host + ":5557";
        if (replay.empty())
            replay = "tcp://" + host + ":5558";
    }
    if (live.empty()) {
        throw std::invalid_argument("ClientOptions: set endpoint or pod_ip");
    }
    const auto live_use = options.bind ? detail::EndpointUse::kBind : detail::EndpointUse::kConnect;
    check_endpoint(live, "endpoint", live_use, options);
    out.live = offset_endpoint_port(live, options.data_parallel_rank);
    check_endpoint(out.live, "endpoint", live_use, options);  // the rank may take it past 65535
    if (options.replay_enabled && !replay.empty()) {
        check_endpoint(replay, "replay_endpoint", detail::EndpointUse::kConnect, options);
        out.replay = offset_endpoint_port(replay, options.data_parallel_rank);
        check_endpoint(out.replay, "replay_endpoint", detail::EndpointUse::kConnect, options);
    }
    return out;
}

void validate(const ClientOptions& options) {
    if (options.pod_key.empty()) {
        throw std::invalid_argument("ClientOptions.pod_key must not be empty");
    }
    resolve_endpoints(options);
    check_positive(options.replay_idle_timeout, "replay_idle_timeout");
    check_positive(options.replay_total_timeout, "replay_total_timeout");
    check_positive(options.replay_backoff_initial, "replay_backoff_initial");
    if (options.tail_probe_idle.count() < 0) {
        throw std::invalid_argument("ClientOptions.tail_probe_idle must not be negative");
    }
    check_positive(options.reconnect_interval, "reconnect_interval");
    if (options.replay_backoff_max < options.replay_backoff_initial) {
        throw std::invalid_argument(
            "ClientOptions.replay_backoff_max must be at least replay_backoff_initial");
    }
    if (options.reconnect_interval_max.count() < 0) {
        throw std::invalid_argument("ClientOptions.reconnect_interval_max must not be negative");
    }
    if (options.heartbeat_interval.count() < 0 || options.heartbeat_timeout.count() < 0) {
        throw std::invalid_argument(
            "ClientOptions.heartbeat_interval and heartbeat_timeout must not be negative");
    }
    if (options.tcp_keepalive &&
        (options.tcp_keepalive_idle.count() <= 0 || options.tcp_keepalive_interval.count() <= 0 ||
         options.tcp_keepalive_count <= 0)) {
        throw std::invalid_argument(
            "ClientOptions.tcp_keepalive_idle, tcp_keepalive_interval and tcp_keepalive_count must "
            "be positive when tcp_keepalive is on");
    }
    if (options.receive_hwm < 0) {
        throw std::invalid_argument("ClientOptions.receive_hwm must not be negative");
    }
    if (options.connect_warning_after.count() < 0) {
        throw std::invalid_argument("ClientOptions.connect_warning_after must not be negative");
    }
    if (options.max_message_size == 0 || options.max_message_size < -1) {
        throw std::invalid_argument(
            "ClientOptions.max_message_size must be positive, or -1 for no limit");
    }
    if (options.max_buffered_batches == 0) {
        throw std::invalid_argument("ClientOptions.max_buffered_batches must be at least 1");
    }
    if (options.log_errors_per_second < 0) {
        throw std::invalid_argument("ClientOptions.log_errors_per_second must not be negative");
    }
}

}  // namespace kvevents

#include "endpoint_syntax.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <arpa/inet.h>
#include <netdb.h>
#include <spdlog/logger.h>
#include <sys/socket.h>

namespace kvevents::detail {
namespace {

constexpr std::string_view kTcp = "tcp://";
constexpr std::string_view kIpc = "ipc://";
constexpr std::string_view kInproc = "inproc://";

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

struct HostPort {
    std::string host;
    std::string port;
    bool bracketed = false;
};

// The destination of "tcp://[source;]host:port", split; or what is wrong with it.
std::optional<std::string> split_tcp(std::string_view rest, HostPort& out) {
    if (const auto semicolon = rest.find(';'); semicolon != std::string_view::npos)
        rest = rest.substr(semicolon + 1);  // the part before is a source address to bind
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            return std::string("has an unclosed '[' in its IPv6 address");
        out.host = std::string(rest.substr(1, close - 1));
        out.bracketed = true;
        rest.remove_prefix(close + 1);
        if (rest.empty() || rest.front() != ':')
            return std::string("has no port after its IPv6 address (tcp://[address]:port)");
        out.port = std::string(rest.substr(1));
        return std::nullopt;
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos)
        return std::string("has no port (tcp://host:port)");
    out.host = std::string(rest.substr(0, colon));
    out.port = std::string(rest.substr(colon + 1));
    if (out.host.find(':') != std::string::npos)
        return "has an IPv6 address without brackets: write tcp://[" + out.host + "]:" + out.port;
    return std::nullopt;
}

std::optional<std::string> port_problem(const std::string& port, EndpointUse use) {
    if (port == "*") {
        if (use == EndpointUse::kBind)
            return std::nullopt;
        return std::string(
            "has port '*', which only a bound endpoint may use (pick any free port)");
    }
    const bool digits =
        !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        });
    const long value = digits ? std::stol(port) : -1;
    const long lowest = use == EndpointUse::kBind ? 0 : 1;
    if (value < lowest || value > 65535) {
        return "has port '" + port + "', which is not a number in " + std::to_string(lowest) +
               "-65535" + (use == EndpointUse::kBind ? " or '*'" : "");
    }
    return std::nullopt;
}

bool looks_like_ipv4(const std::string& host) {
    return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
        return c == '.' || std::isdigit(static_cast<unsigned char>(c));
    });
}

bool is_ipv4(const std::string& host) {
    in_addr address{};
    return inet_pton(AF_INET, host.c_str(), &address) == 1;
}

// A link-local address may name its interface ("fe80::1%eth0"), which libzmq resolves.
bool is_ipv6(const std::string& host) {
    const std::string address_part = host.substr(0, host.find('%'));
    in6_addr address{};
    return inet_pton(AF_INET6, address_part.c_str(), &address) == 1;
}

std::optional<std::string> host_problem(const HostPort& hp, EndpointUse use) {
    if (hp.host.empty())
        return std::string("has no host");
    if (hp.bracketed) {
        if (is_ipv6(hp.host))
            return std::nullopt;
        return "has '" + hp.host + "' in brackets, which is not an IPv6 address";
    }
    if (hp.host == "*") {
        if (use == EndpointUse::kBind)
            return std::nullopt;
        return std::string("has host '*', which only a bound endpoint may use");
    }
    if (looks_like_ipv4(hp.host)) {
        if (is_ipv4(hp.host))
            return std::nullopt;
        return "has host '" + hp.host + "', which is not a valid IPv4 address";
    }
    // A DNS name, or an interface name where binding.
    const bool name_chars = std::all_of(hp.host.begin(), hp.host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
    if (!name_chars || hp.host.size() > 253)
        return "has host '" + hp.host + "', which is neither an IP address nor a host name";
    return std::nullopt;
}

}  // namespace

std::optional<std::string> endpoint_problem(const std::string& endpoint, EndpointUse use) {
    if (starts_with(endpoint, kTcp)) {
        HostPort hp;
        if (auto problem = split_tcp(std::string_view(endpoint).substr(kTcp.size()), hp))
            return problem;
        if (auto problem = host_problem(hp, use))
            return problem;
        return port_problem(hp.port, use);
    }
    if (starts_with(endpoint, kIpc)) {
        const std::string path = endpoint.substr(kIpc.size());
        if (path.empty())
            return std::string("has no path after ipc://");
        if (path == "*" && use == EndpointUse::kConnect)
            return std::string("is ipc://*, which only a bound endpoint may use");
        return std::nullopt;
    }
    if (starts_with(endpoint, kInproc)) {
        if (endpoint.size() == kInproc.size())
            return std::string("has no name after inproc://");
        return std::nullopt;
    }
    return std::string("must start with tcp://, ipc:// or inproc://");
}

bool has_ipv6_literal(const std::string& endpoint) {
    HostPort hp;
    return starts_with(endpoint, kTcp) &&
           !split_tcp(std::string_view(endpoint).substr(kTcp.size()), hp) && hp.bracketed;
}

std::optional<TcpAddress> numeric_tcp_address(const std::string& endpoint) {
    HostPort hp;
    if (!starts_with(endpoint, kTcp) ||
        split_tcp(std::string_view(endpoint).substr(kTcp.size()), hp) ||
        endpoint.find(';') != std::string::npos || port_problem(hp.port, EndpointUse::kConnect))
        return std::nullopt;
    const auto port = htons(static_cast<std::uint16_t>(std::stoi(hp.port)));
    const auto stored = [](const auto& address) {
        TcpAddress out;
        std::memcpy(&out.storage, &address, sizeof address);
        out.size = sizeof address;
        return out;
    };
    if (hp.bracketed) {
        sockaddr_in6 v6{};
        v6.sin6_family = AF_INET6;
        v6.sin6_port = port;
        if (inet_pton(AF_INET6, hp.host.c_str(), &v6.sin6_addr) != 1)
            return std::nullopt;  // a zone ("fe80::1%eth0") is left to libzmq
        return stored(v6);
    }
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = port;
    if (!looks_like_ipv4(hp.host) || inet_pton(AF_INET, hp.host.c_str(), &v4.sin_addr) != 1)
        return std::nullopt;
    return stored(v4);
}

bool is_ip_literal(const std::string& host) {
    return is_ipv4(host) || is_ipv6(host);
}

std::optional<std::string> host_does_not_resolve(const std::string& endpoint) {
    if (!starts_with(endpoint, kTcp))
        return std::nullopt;
    HostPort hp;
    if (split_tcp(std::string_view(endpoint).substr(kTcp.size()), hp) || hp.bracketed ||
        hp.host == "*" || is_ip_literal(hp.host))
        return std::nullopt;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(hp.host.c_str(), nullptr, &hints, &found);
    if (found != nullptr)
        freeaddrinfo(found);
    if (rc == 0)
        return std::nullopt;
    return hp.host;
}

void warn_if_unresolvable(const ResolvedEndpoints& endpoints,
                          bool live_is_bound,
                          const std::string& pod_key,
                          spdlog::logger& log) {
    const auto check = [&](const std::string& endpoint, const char* role) {
        if (const auto host = host_does_not_resolve(endpoint)) {
            log.warn(
                "[{}] host '{}' of the {} endpoint {} does not resolve now; libzmq keeps trying "
                "to resolve and connect it (check the name and DNS)",
                pod_key, *host, role, endpoint);
        }
    };
    if (!live_is_bound)
        check(endpoints.live, "live");
    if (!endpoints.replay.empty())
        check(endpoints.replay, "replay");
}

}  // namespace kvevents::detail

#pragma once

// What libzmq would accept as an endpoint, checked before a socket sees it: libzmq takes
// "tcp://127.0.0.1:99999" or "tcp://256.1.1.1:5557" for a connect and retries it for ever,
// silently. A hostname is left to libzmq, which resolves it when it connects (and again on each
// reconnect); host_does_not_resolve() lets the caller warn about one that does not resolve now.

#include <optional>
#include <string>

#include <spdlog/fwd.h>
#include <sys/socket.h>

#include <kvevents/client_options.h>

namespace kvevents::detail {

enum class EndpointUse : bool { kConnect, kBind };

/// Nullopt if `endpoint` is usable for `use`; otherwise what is wrong with it, naming the part
/// (for example "port 99999 is out of range 1-65535").
std::optional<std::string> endpoint_problem(const std::string& endpoint, EndpointUse use);

/// The host of a tcp:// endpoint when it is a name (not an IP literal, '*' or an interface being
/// bound) that the resolver cannot resolve now; nullopt otherwise. Blocks for the lookup.
std::optional<std::string> host_does_not_resolve(const std::string& endpoint);

/// Logs one warning for each connected endpoint whose host does not resolve now. Not an error:
/// libzmq resolves again on every reconnect, so a pod's name that appears in DNS later works.
void warn_if_unresolvable(const ResolvedEndpoints& endpoints,
                          bool live_is_bound,
                          const std::string& pod_key,
                          spdlog::logger& log);

/// Whether `endpoint` is tcp:// with a bracketed IPv6 address: its socket needs ZMQ_IPV6, without
/// which libzmq resolves IPv4 only and retries for ever. (Not set for host names: a name with an
/// IPv6 address listed first would then be dialled over IPv6, where vLLM's IPv4 "tcp://*" socket
/// does not listen.)
bool has_ipv6_literal(const std::string& endpoint);

/// A socket address to dial without a lookup.
struct TcpAddress {
    sockaddr_storage storage{};
    socklen_t size = 0;
};

/// The address of a tcp:// endpoint written as "tcp://IPv4:port" or "tcp://[IPv6]:port"; nullopt
/// for anything else (host names, a source address, a link-local zone, ipc://, inproc://).
std::optional<TcpAddress> numeric_tcp_address(const std::string& endpoint);

/// Whether `host` is an IPv4 literal in dotted-quad form or an IPv6 literal (without brackets).
bool is_ip_literal(const std::string& host);

}  // namespace kvevents::detail

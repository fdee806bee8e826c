#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include <kvevents/client_options.h>

namespace kvevents {
namespace {

TEST(OffsetEndpointPort, FollowsVllmRules) {
    EXPECT_EQ(offset_endpoint_port("tcp://10.0.0.7:5557", 0), "tcp://10.0.0.7:5557");
    EXPECT_EQ(offset_endpoint_port("tcp://10.0.0.7:5557", 3), "tcp://10.0.0.7:5560");
    EXPECT_EQ(offset_endpoint_port("tcp://[::1]:5557", 1), "tcp://[::1]:5558");
    EXPECT_EQ(offset_endpoint_port("inproc://kv", 2), "inproc://kv_dp2");
    EXPECT_EQ(offset_endpoint_port("ipc:///tmp/kv", 0), "ipc:///tmp/kv");
    EXPECT_THROW(offset_endpoint_port("ipc:///tmp/kv", 1), std::invalid_argument);
    EXPECT_THROW(offset_endpoint_port("tcp://host:*", 1), std::invalid_argument);
    EXPECT_THROW(offset_endpoint_port("tcp://host:65535", 1), std::invalid_argument);
    EXPECT_THROW(offset_endpoint_port("tcp://host:5557", -1), std::invalid_argument);
}

TEST(ResolveEndpoints, PodIpGivesVllmDefaultPortsPlusRank) {
    ClientOptions o;
    o.pod_ip = "10.1.2.3";
    o.data_parallel_rank = 2;
    const ResolvedEndpoints e = resolve_endpoints(o);
    EXPECT_EQ(e.live, "tcp://10.1.2.3:5559");
    EXPECT_EQ(e.replay, "tcp://10.1.2.3:5560");
}

TEST(ResolveEndpoints, Ipv6PodIpIsBracketed) {
    ClientOptions o;
    o.pod_ip = "fd00::7";
    EXPECT_EQ(resolve_endpoints(o).live, "tcp://[fd00::7]:5557");
}

TEST(ResolveEndpoints, ExplicitEndpointsWinAndReplayCanBeTurnedOff) {
    ClientOptions o;
    o.pod_ip = "10.1.2.3";
    o.endpoint = "tcp://127.0.0.1:7000";
    o.replay_enabled = false;
    const ResolvedEndpoints e = resolve_endpoints(o);
    EXPECT_EQ(e.live, "tcp://127.0.0.1:7000");
    EXPECT_TRUE(e.replay.empty());
}

TEST(ResolveEndpoints, NoReplayEndpointMeansReplayOff) {
    ClientOptions o;
    o.endpoint = "tcp://127.0.0.1:7000";
    EXPECT_TRUE(resolve_endpoints(o).replay.empty());
}

std::string validation_error(const ClientOptions& o) {
    try {
        validate(o);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

TEST(ValidateOptions, NamesTheBadField) {
    ClientOptions good;
    good.pod_key = "p";
    good.endpoint = "tcp://127.0.0.1:5557";
    EXPECT_EQ(validation_error(good), "");
    struct Case {
        const char* field;
        void (*spoil)(ClientOptions&);
    };
    const Case cases[] = {
        {"pod_ip", [](ClientOptions& o) { o.pod_ip = "10.0.0.1/24"; }},
        {"replay_endpoint", [](ClientOptions& o) { o.replay_endpoint = "udp://x:1"; }},
        {"replay_idle_timeout", [](ClientOptions& o) { o.replay_idle_timeout = {}; }},
        {"replay_total_timeout", [](ClientOptions& o) { o.replay_total_timeout = {}; }},
        {"replay_backoff_initial", [](ClientOptions& o) { o.replay_backoff_initial = {}; }},
        {"tail_probe_idle",
         [](ClientOptions& o) { o.tail_probe_idle = std::chrono::milliseconds(-1); }},
        {"reconnect_interval", [](ClientOptions& o) { o.reconnect_interval = {}; }},
        {"reconnect_interval_max",
         [](ClientOptions& o) { o.reconnect_interval_max = std::chrono::milliseconds(-1); }},
        {"heartbeat_interval",
         [](ClientOptions& o) { o.heartbeat_interval = std::chrono::milliseconds(-1); }},
        {"receive_hwm", [](ClientOptions& o) { o.receive_hwm = -1; }},
        {"max_message_size", [](ClientOptions& o) { o.max_message_size = 0; }},
        {"max_message_size", [](ClientOptions& o) { o.max_message_size = -2; }},
        {"tcp_keepalive_count", [](ClientOptions& o) { o.tcp_keepalive_count = 0; }},
        {"log_errors_per_second", [](ClientOptions& o) { o.log_errors_per_second = -1; }},
    };
    for (const Case& c : cases) {
        ClientOptions o = good;
        c.spoil(o);
        EXPECT_NE(validation_error(o).find(c.field), std::string::npos) << c.field;
    }
    ClientOptions unlimited = good;
    unlimited.max_message_size = -1;
    EXPECT_EQ(validation_error(unlimited), "");
}

// Endpoints libzmq would take and then retry for ever are refused, with the part that is wrong.
TEST(ValidateOptions, EndpointsThatCannotWorkAreRefusedWithTheReason) {
    struct Case {
        const char* endpoint;
        bool bind;
        const char* reason;  // "" : accepted
    };
    const Case cases[] = {
        {"tcp://127.0.0.1:5557", false, ""},
        {"tcp://10.0.0.7:1", false, ""},
        {"tcp://pod-a.ns.svc.cluster.local:5557", false, ""},
        {"tcp://[::1]:5557", false, ""},
        {"tcp://[fe80::1%eth0]:5557", false, ""},
        {"tcp://127.0.0.1:*", true, ""},
        {"tcp://*:5557", true, ""},
        {"tcp://eth0:5557", true, ""},
        {"tcp://127.0.0.1:0", true, ""},
        {"tcp://192.168.1.2;10.0.0.7:5557", false, ""},
        {"ipc:///tmp/kv", false, ""},
        {"inproc://kv", false, ""},
        {"tcp://127.0.0.1:99999", false, "port '99999', which is not a number in 1-65535"},
        {"tcp://127.0.0.1:65536", false, "not a number in 1-65535"},
        {"tcp://127.0.0.1:0", false, "not a number in 1-65535"},
        {"tcp://127.0.0.1:70000", true, "not a number in 0-65535 or '*'"},
        {"tcp://127.0.0.1:55x", false, "port '55x'"},
        {"tcp://127.0.0.1:", false, "port ''"},
        {"tcp://127.0.0.1:*", false, "only a bound endpoint may use"},
        {"tcp://*:5557", false, "only a bound endpoint may use"},
        {"tcp://256.1.1.1:5557", false, "'256.1.1.1', which is not a valid IPv4 address"},
        {"tcp://10.0.0:5557", false, "not a valid IPv4 address"},
        {"tcp://127.0.0.1", false, "has no port"},
        {"tcp://:5557", false, "has no host"},
        {"tcp://::1:5557", false, "without brackets: write tcp://[::1]:5557"},
        {"tcp://[::1]5557", false, "no port after its IPv6 address"},
        {"tcp://[::1:5557", false, "unclosed '['"},
        {"tcp://[10.0.0.1]:5557", false, "not an IPv6 address"},
        {"tcp://bad host:5557", false, "neither an IP address nor a host name"},
        {"ipc://", false, "no path"},
        {"ipc://*", false, "only a bound endpoint"},
        {"inproc://", false, "no name"},
        {"udp://10.0.0.7:5557", false, "must start with tcp://, ipc:// or inproc://"},
    };
    for (const Case& c : cases) {
        ClientOptions o;
        o.pod_key = "p";
        o.endpoint = c.endpoint;
        o.bind = c.bind;
        o.replay_enabled = false;
        const std::string error = validation_error(o);
        SCOPED_TRACE(std::string(c.endpoint) + (c.bind ? " (bind)" : " (connect)"));
        if (std::string(c.reason).empty()) {
            EXPECT_EQ(error, "");
        } else {
            EXPECT_NE(error.find(c.reason), std::string::npos) << error;
            EXPECT_NE(error.find("ClientOptions.endpoint '" + std::string(c.endpoint) + "'"),
                      std::string::npos)
                << error;
        }
    }
}

TEST(ValidateOptions, ReplayEndpointsAreCheckedAsConnectedOnes) {
    ClientOptions o;
    o.pod_key = "p";
    o.endpoint = "tcp://127.0.0.1:*";
    o.bind = true;
    o.replay_endpoint = "tcp://127.0.0.1:*";
    EXPECT_NE(validation_error(o).find("ClientOptions.replay_endpoint 'tcp://127.0.0.1:*' has "
                                       "port '*', which only a bound endpoint may use"),
              std::string::npos)
        << validation_error(o);
}

TEST(ValidateOptions, ABadPodIpIsNamedWithTheEndpointItGives) {
    ClientOptions o;
    o.pod_key = "p";
    o.pod_ip = "256.1.1.1";
    const std::string error = validation_error(o);
    EXPECT_NE(error.find("ClientOptions.pod_ip '256.1.1.1' gives endpoint "
                         "'tcp://256.1.1.1:5557', which has host '256.1.1.1'"),
              std::string::npos)
        << error;
}

TEST(ValidateOptions, ARankThatTakesThePortPast65535IsRefused) {
    ClientOptions o;
    o.pod_key = "p";
    o.endpoint = "tcp://127.0.0.1:65535";
    o.data_parallel_rank = 1;
    EXPECT_NE(validation_error(o).find("past port 65535"), std::string::npos)
        << validation_error(o);
}

}  // namespace
}  // namespace kvevents

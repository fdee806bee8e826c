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

}  // namespace
}  // namespace kvevents

#include "endpoint_syntax.h"

#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace kvevents::detail {
namespace {

// The dialled address of a numeric endpoint, as text, or "-" when it is left to libzmq.
std::string dialled(const std::string& endpoint) {
    const auto address = numeric_tcp_address(endpoint);
    if (!address)
        return "-";
    char text[INET6_ADDRSTRLEN] = {};
    if (address->storage.ss_family == AF_INET6) {
        sockaddr_in6 v6{};
        std::memcpy(&v6, &address->storage, sizeof v6);
        EXPECT_EQ(address->size, sizeof v6);
        inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(v6.sin6_port));
    }
    sockaddr_in v4{};
    std::memcpy(&v4, &address->storage, sizeof v4);
    EXPECT_EQ(address->size, sizeof v4);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(v4.sin_port));
}

TEST(NumericTcpAddress, IpLiteralsAreDialledDirectlyAndEverythingElseIsLeftToLibzmq) {
    EXPECT_EQ(dialled("tcp://10.0.0.7:5557"), "10.0.0.7:5557");
    EXPECT_EQ(dialled("tcp://127.0.0.1:1"), "127.0.0.1:1");
    EXPECT_EQ(dialled("tcp://[fd00::7]:5558"), "[fd00::7]:5558");
    EXPECT_EQ(dialled("tcp://[::1]:65535"), "[::1]:65535");
    EXPECT_EQ(dialled("tcp://vllm-0.vllm:5557"), "-");        // a name: libzmq resolves it
    EXPECT_EQ(dialled("tcp://[fe80::1%eth0]:5557"), "-");     // a zone
    EXPECT_EQ(dialled("tcp://10.0.0.1;10.0.0.7:5557"), "-");  // a source address
    EXPECT_EQ(dialled("ipc:///tmp/kv.sock"), "-");
    EXPECT_EQ(dialled("inproc://kv"), "-");
    EXPECT_EQ(dialled("tcp://10.0.0.7:*"), "-");
    EXPECT_EQ(dialled("tcp://10.0.0.7:0"), "-");
    EXPECT_EQ(dialled("tcp://10.0.0.7"), "-");
    EXPECT_EQ(dialled("tcp://256.0.0.7:5557"), "-");
}

}  // namespace
}  // namespace kvevents::detail

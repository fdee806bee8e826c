#pragma once

// Loopback endpoints and publisher set-ups that several integration tests need.

#include <string>

#include <kvevents/testing/mock_publisher.h>

namespace kvevents::test {

struct FreeEndpoints {
    std::string live;
    std::string replay;
};

/// Two loopback endpoints with nobody on them: a publisher binds them, they are read, and it goes.
inline FreeEndpoints unused_endpoints() {
    testing::MockPublisher probe;
    return {probe.endpoint(), probe.replay_endpoint()};
}

/// A mock engine that connects out to `endpoint` (where a subscriber binds), without replay.
inline testing::MockPublisherOptions connecting_to(const std::string& endpoint) {
    testing::MockPublisherOptions options;
    options.endpoint = endpoint;
    options.connect = true;
    options.replay_endpoint.clear();
    return options;
}

}  // namespace kvevents::test

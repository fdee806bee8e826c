// A client under a memory limit takes every crafted payload and goes on to the next batch.
#include <algorithm>
#include <chrono>

#include <gtest/gtest.h>

#include <kvevents/testing/mock_publisher.h>

#include "../integration/client_fixtures.h"
#include "heap_meter.h"
#include "hostile_payloads.h"

namespace kvevents::test {
namespace {

using namespace std::chrono_literals;

bool has_decode_error_for(const RecordingHandler& handler, std::uint64_t seq) {
    const auto notices = handler.notices();
    return std::any_of(notices.begin(), notices.end(), [&](const StreamNotice& n) {
        return n.kind == StreamNotice::Kind::kDecodeError && n.first_sequence == seq;
    });
}

bool delivered(const RecordingHandler& handler, std::uint64_t seq) {
    const auto batches = handler.batches();
    return std::any_of(batches.begin(), batches.end(),
                       [&](const ReceivedBatch& b) { return b.sequence == seq; });
}

// Lifts the limit however the test ends, so later tests run unlimited.
struct LimitGuard {
    explicit LimitGuard(std::size_t headroom) {
        heap_meter::set_limit(heap_meter::live() + headroom);
    }
    ~LimitGuard() { heap_meter::set_limit(0); }
};

// A publisher and a live-only client whose loop thread is under the heap limit (its first
// batch puts it there; the limit itself is set by each test).
class ClientMemory : public ::testing::Test {
protected:
    ClientOptions live_options() const {
        ClientOptions o = options_for(pub);
        o.start_sequence = std::nullopt;
        return o;
    }

    void start(ClientOptions options) {
        handler.before_batch = [](const ReceivedBatch&) { heap_meter::limit_this_thread(); };
        client = start_client(pub, handler, std::move(options));
        publish_n(pub, 1);
        ASSERT_TRUE(handler.wait_for_batches(1));
    }

    testing::MockPublisher pub;
    RecordingHandler handler;
    std::unique_ptr<ZmqClient> client;  // declared last: stopped before the rest goes
};

TEST_F(ClientMemory, EveryCraftedPayloadIsDecodedOrReportedAndTheNextBatchArrives) {
    start(live_options());
    const std::vector<HostilePayload> payloads = hostile_payloads();
    // Room for one payload's budget (8 x 1 MiB + 64 KiB) and the handler's copies of the valid
    // ones, not for the gigabytes an unbounded decoder asks for.
    LimitGuard limit(96 << 20);
    for (const HostilePayload& p : payloads) {
        SCOPED_TRACE(p.name);
        const std::uint64_t hostile = pub.publish_payload(p.bytes);
        const std::uint64_t next = pub.next_sequence();
        publish_n(pub, 1);
        ASSERT_TRUE(handler.wait_for([&](const RecordingHandler& h) { return delivered(h, next); }))
            << "the batch after it never arrived";
        if (p.must_decode) {
            EXPECT_TRUE(delivered(handler, hostile));
        } else {
            EXPECT_TRUE(delivered(handler, hostile) || has_decode_error_for(handler, hostile));
        }
    }
    EXPECT_EQ(client->stats().state, ConnectionState::kConnected);
}

TEST_F(ClientMemory, AnAllocationFailureInOneBatchIsADecodeErrorNotTheEndOfTheClient) {
    start(live_options());
    const HostilePayload big = hostile_payloads()[7];  // valid: needs about 6 MiB to decode
    LimitGuard limit(3 << 20);                         // enough to receive it, not to decode it
    const std::uint64_t failing = pub.publish_payload(big.bytes);
    const std::uint64_t next = pub.next_sequence();
    publish_n(pub, 1);
    ASSERT_TRUE(handler.wait_for([&](const RecordingHandler& h) { return delivered(h, next); }))
        << ::testing::PrintToString(handler.log()) << " " << client->stats().decode_errors;
    EXPECT_TRUE(has_decode_error_for(handler, failing));
    EXPECT_FALSE(delivered(handler, failing));
    const auto notices = handler.notices();
    const auto error = std::find_if(notices.begin(), notices.end(), [](const StreamNotice& n) {
        return n.kind == StreamNotice::Kind::kDecodeError;
    });
    ASSERT_NE(error, notices.end());
    EXPECT_NE(error->detail.find("out of memory"), std::string::npos) << error->detail;
}

TEST_F(ClientMemory, AMessageAboveTheMaximumSizeIsNeverDeliveredAndTheStreamGoesOn) {
    ClientOptions options = live_options();
    options.max_message_size = 4096;
    // The replay socket drops the same batch, so the reconnect check cannot succeed: it gives
    // up within this.
    options.replay_total_timeout = 1s;
    start(options);
    const std::uint64_t oversized = pub.publish_payload(hostile_payloads(64 * 1024)[7].bytes);
    // libzmq drops the connection that carried it; once the client is back, the stream goes on
    // and the missing batch is announced, not delivered.
    ASSERT_TRUE(handler.wait_for_state(ConnectionState::kDisconnected));
    bool announced = false;
    ASSERT_TRUE(handler.wait_for([&](const RecordingHandler& h) {
        const auto notices = h.notices();
        announced = std::any_of(notices.begin(), notices.end(), [&](const StreamNotice& n) {
            return (n.kind == StreamNotice::Kind::kUnrecoverableGap ||
                    n.kind == StreamNotice::Kind::kContinuityLost) &&
                   n.first_sequence && *n.first_sequence <= oversized;
        });
        if (!announced)
            publish_n(pub, 1);  // the loss shows when a later batch arrives
        return announced;
    })) << ::testing::PrintToString(handler.log());
    EXPECT_FALSE(delivered(handler, oversized));
}

}  // namespace
}  // namespace kvevents::test

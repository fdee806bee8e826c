// The decoder's peak heap on crafted worst cases, measured by counting operator new.
#include <cstdio>

#include <gtest/gtest.h>

#include <kvevents/decode.h>

#include "heap_meter.h"
#include "hostile_payloads.h"

namespace kvevents::test {
namespace {

struct Measured {
    DecodeResult result;
    std::size_t peak = 0;      // heap the decode took at its highest
    std::size_t retained = 0;  // heap the result holds once decoding is done
};

Measured decode_measured(const std::string& payload, const DecodeLimits& limits = {}) {
    Measured m;
    const std::size_t before = heap_meter::live();
    heap_meter::reset_peak();
    m.result = decode_batch(payload.data(), payload.size(), limits);
    m.peak = heap_meter::peak() - before;
    m.retained = heap_meter::live() - before;
    return m;
}

std::size_t bound_for(std::size_t payload_size) {
    const DecodeLimits limits;
    return limits.heap_per_payload_byte * payload_size + limits.heap_allowance;
}

TEST(DecodeMemory, EveryCraftedWorstCaseStaysWithinTheBound) {
    for (const HostilePayload& p : hostile_payloads()) {
        SCOPED_TRACE(p.name);
        const Measured m = decode_measured(p.bytes);
        const double ratio = static_cast<double>(m.peak) / static_cast<double>(p.bytes.size());
        std::printf("%-34s %8zu bytes  peak %9zu (%.2fx)  %s\n", p.name.c_str(), p.bytes.size(),
                    m.peak, ratio, m.result.fatal ? m.result.fatal->message().c_str() : "decoded");
        EXPECT_LE(m.peak, bound_for(p.bytes.size()));
        if (p.must_decode) {
            EXPECT_FALSE(m.result.fatal) << m.result.fatal->message();
            EXPECT_EQ(m.result.malformed_events, 0u);
            EXPECT_FALSE(m.result.batch.events.empty());
        }
    }
}

TEST(DecodeMemory, ManySmallEventsTakeUnderSevenBytesPerPayloadByte) {
    for (const HostilePayload& p : hostile_payloads()) {
        if (p.name.rfind("many one-hash BlockRemoved", 0) != 0)
            continue;
        SCOPED_TRACE(p.name);
        const Measured m = decode_measured(p.bytes);
        ASSERT_TRUE(m.result.ok());
        EXPECT_LT(m.retained, 7 * p.bytes.size());
    }
}

TEST(DecodeMemory, ABatchOfJunkEventsIsGivenUpAfterAThousand) {
    for (const HostilePayload& p : hostile_payloads()) {
        if (p.name != "huge event count")
            continue;
        const Measured m = decode_measured(p.bytes);
        ASSERT_TRUE(m.result.fatal);
        EXPECT_EQ(m.result.fatal->code, DecodeErrc::kBadEvent);
        EXPECT_NE(m.result.fatal->message().find("more than 1024 malformed events"),
                  std::string::npos)
            << m.result.fatal->message();
        EXPECT_EQ(m.result.malformed_events, 1025u);
        EXPECT_EQ(m.result.event_errors.size(), DecodeResult::kMaxEventErrorsKept);
    }
}

TEST(DecodeMemory, ATighterBudgetIsHonouredAndNamed) {
    const HostilePayload p = hostile_payloads()[7];  // many one-hash BlockRemoved
    DecodeLimits limits;
    limits.heap_per_payload_byte = 2;
    limits.heap_allowance = 0;
    const Measured m = decode_measured(p.bytes, limits);
    ASSERT_TRUE(m.result.fatal);
    EXPECT_EQ(m.result.fatal->code, DecodeErrc::kTooLarge);
    EXPECT_NE(m.result.fatal->message().find("2 per payload byte"), std::string::npos)
        << m.result.fatal->message();
    EXPECT_LE(m.peak, 2 * p.bytes.size());
}

TEST(DecodeMemory, AnAllocatorFailureIsAnOutOfMemoryError) {
    const HostilePayload p = hostile_payloads()[7];
    heap_meter::limit_this_thread();
    heap_meter::set_limit(heap_meter::live() + 64 * 1024);
    const DecodeResult r = decode_batch(p.bytes.data(), p.bytes.size());
    heap_meter::set_limit(0);
    heap_meter::limit_this_thread(false);
    ASSERT_TRUE(r.fatal);
    EXPECT_EQ(r.fatal->code, DecodeErrc::kOutOfMemory);
    EXPECT_TRUE(r.batch.events.empty());
}

}  // namespace
}  // namespace kvevents::test

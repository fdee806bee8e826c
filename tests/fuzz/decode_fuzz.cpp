// libFuzzer target for the payload decoder. Beyond "no crash, no sanitizer report", it checks
// that every reported error carries a message and an offset inside the input, that decoding
// never took more heap than DecodeLimits allows, and that a payload that decoded cleanly decodes
// identically after re-encoding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <kvevents/decode.h>
#include <kvevents/testing/encoder.h>

#include "../memory/heap_meter.h"

namespace {

void check_error(const kvevents::DecodeError& e, std::size_t size) {
    if (e.offset > size || e.message().empty()) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace heap_meter = kvevents::test::heap_meter;
    const kvevents::DecodeLimits limits;
    const std::size_t before = heap_meter::live();
    heap_meter::reset_peak();
    const kvevents::DecodeResult result = kvevents::decode_batch(data, size, limits);
    if (heap_meter::peak() - before > limits.heap_per_payload_byte * size + limits.heap_allowance) {
        std::abort();
    }
    if (result.fatal) {
        check_error(*result.fatal, size);
    }
    for (const kvevents::DecodeError& e : result.event_errors) {
        check_error(e, size);
    }
    if (result.ok()) {
        const std::string again = kvevents::testing::encode_batch(result.batch);
        // The re-encoding may be smaller than the input (narrower integers): no budget here.
        kvevents::DecodeLimits unbounded;
        unbounded.heap_allowance = std::size_t{1} << 40;
        const kvevents::DecodeResult second =
            kvevents::decode_batch(again.data(), again.size(), unbounded);
        if (!second.ok() || second.batch.events.size() != result.batch.events.size()) {
            std::abort();
        }
    }
    return 0;
}

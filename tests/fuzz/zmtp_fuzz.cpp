// libFuzzer target for the ZMTP reader that the fleet reads publishers' TCP streams with. The
// input is fed in pieces whose sizes come from its first byte, as reads would split it. Beyond
// "no crash, no sanitizer report", it checks that a message never keeps more frames than the
// reader promises and that commands stay within their bound; feeding stops at the first error, as
// the connection does. Run without a frame size limit, so -malloc_limit_mb shows that nothing is
// allocated from a declared size.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "zmtp_reader.h"

namespace {

class CheckingSink final : public kvevents::detail::ZmtpReaderSink {
public:
    void on_greeting() override {}
    void on_command(std::string_view name, std::string_view body) override {
        if (name.size() > 255 || body.size() > kvevents::detail::ZmtpReader::kMaxCommandSize)
            std::abort();
    }
    void on_message(std::vector<zmq::message_t>& frames, std::size_t frame_count) override {
        if (frames.empty() || frames.size() > kvevents::detail::ZmtpReader::kMaxKeptFrames ||
            frame_count < frames.size())
            std::abort();
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::size_t piece = 1 + data[0] % 64;
    const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
    kvevents::detail::ZmtpReader reader(-1);
    CheckingSink sink;
    for (std::size_t at = 0; at < stream.size(); at += piece) {
        if (reader.feed(stream.substr(at, piece), sink))
            break;
    }
    return 0;
}

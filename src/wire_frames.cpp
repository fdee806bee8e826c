#include "wire_frames.h"

namespace kvevents::detail {

std::string be_u64(std::uint64_t value) {
    std::string out(8, '\0');
    for (int i = 7; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xff);
        value >>= 8;
    }
    return out;
}

std::uint64_t read_be_u64(std::string_view bytes) {
    if (bytes.size() > 8)
        bytes.remove_prefix(bytes.size() - 8);
    std::uint64_t v = 0;
    for (const char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
    return v;
}

namespace {

ParsedFrames malformed(std::string error) {
    ParsedFrames out;
    out.error = std::move(error);
    return out;
}

// Fills seq and payload from the last two frames, checking the sequence frame's width.
ParsedFrames sequence_and_payload(std::string_view seq, std::string_view payload) {
    if (seq.size() != 8) {
        return malformed("sequence frame has " + std::to_string(seq.size()) + " bytes, expected 8");
    }
    ParsedFrames out;
    out.sequence = read_be_u64(seq);
    out.payload = payload;
    out.kind = ParsedFrames::Kind::kData;
    return out;
}

}  // namespace

ParsedFrames parse_live_frames(const std::vector<std::string_view>& frames) {
    if (frames.size() != 3) {
        return malformed("live message has " + std::to_string(frames.size()) +
                         " frames, expected 3 (topic, sequence, payload)");
    }
    ParsedFrames out = sequence_and_payload(frames[1], frames[2]);
    if (out.kind == ParsedFrames::Kind::kData && out.payload.empty()) {
        return malformed("live message has an empty payload");
    }
    if (out.kind == ParsedFrames::Kind::kData && out.sequence == kReplayEndSequence) {
        return malformed("live message has sequence ffffffffffffffff, reserved for replay ends");
    }
    out.topic = frames[0];
    return out;
}

ParsedFrames parse_replay_frames(const std::vector<std::string_view>& frames) {
    if (frames.size() != 3 && frames.size() != 4) {
        return malformed("replay reply has " + std::to_string(frames.size()) +
                         " frames, expected 3 or 4");
    }
    if (!frames[0].empty()) {
        return malformed("replay reply does not start with an empty delimiter frame");
    }
    const bool with_topic = frames.size() == 4;
    ParsedFrames out = sequence_and_payload(frames[with_topic ? 2 : 1], frames[with_topic ? 3 : 2]);
    if (with_topic)
        out.topic = frames[1];
    if (out.kind == ParsedFrames::Kind::kData &&
        (out.sequence == kReplayEndSequence || out.payload.empty())) {
        out.kind = ParsedFrames::Kind::kEnd;  // either signal marks the end, as vLLM documents
    }
    return out;
}

}  // namespace kvevents::detail

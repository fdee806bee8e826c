#pragma once

// The ZeroMQ framing of vLLM's KV-event stream, independent of any socket: live messages are
// [topic, seq, payload]; replay replies after the DEALER's empty delimiter are [seq, payload]
// (up to vLLM v0.25) or [topic, seq, payload] (v0.26+), and end with seq ff*8 and an empty payload.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvevents::detail {

inline constexpr std::uint64_t kReplayEndSequence = ~std::uint64_t{0};

/// Eight bytes, big-endian.
std::string be_u64(std::uint64_t value);

/// Reads a big-endian unsigned integer of up to 8 bytes (longer inputs: the last 8 bytes).
/// An empty input reads as 0, as vLLM's replay server reads it.
std::uint64_t read_be_u64(std::string_view bytes);

struct ParsedFrames {
    enum class Kind { kData, kEnd, kMalformed };
    Kind kind = Kind::kMalformed;
    std::string_view topic;
    std::uint64_t sequence = 0;
    std::string_view payload;
    std::string error;  // kMalformed: what was wrong
};

/// A live PUB message: exactly [topic, seq (8 bytes), payload].
ParsedFrames parse_live_frames(const std::vector<std::string_view>& frames);

/// A replay reply as a DEALER receives it: ["", seq, payload] or ["", topic, seq, payload].
ParsedFrames parse_replay_frames(const std::vector<std::string_view>& frames);

}  // namespace kvevents::detail

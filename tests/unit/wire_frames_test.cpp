#include "wire_frames.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace kvevents::detail {
namespace {

using Frames = std::vector<std::string_view>;
const std::string kSeq5 = std::string("\0\0\0\0\0\0\0\5", 8);
const std::string kEnd(8, '\xff');

TEST(WireFrames, BigEndianRoundTrip) {
    EXPECT_EQ(be_u64(5), kSeq5);
    EXPECT_EQ(read_be_u64(kSeq5), 5U);
    EXPECT_EQ(read_be_u64(""), 0U);
    EXPECT_EQ(read_be_u64(std::string("\x01\x02", 2)), 0x102U);
    EXPECT_EQ(read_be_u64(std::string(9, '\x01')), 0x0101010101010101U);
    EXPECT_EQ(read_be_u64(kEnd), kReplayEndSequence);
}

TEST(WireFrames, LiveMessage) {
    const ParsedFrames f = parse_live_frames(Frames{"kv-events", kSeq5, "\x93"});
    ASSERT_EQ(f.kind, ParsedFrames::Kind::kData);
    EXPECT_EQ(f.topic, "kv-events");
    EXPECT_EQ(f.sequence, 5U);
    EXPECT_EQ(f.payload, "\x93");
}

TEST(WireFrames, LiveMessageErrorsSayWhatIsWrong) {
    EXPECT_EQ(parse_live_frames(Frames{"", kSeq5}).error,
              "live message has 2 frames, expected 3 (topic, sequence, payload)");
    EXPECT_EQ(parse_live_frames(Frames{"", "\x01\x02\x03\x04", "\x93"}).error,
              "sequence frame has 4 bytes, expected 8");
    EXPECT_EQ(parse_live_frames(Frames{"", kSeq5, ""}).error, "live message has an empty payload");
    EXPECT_EQ(parse_live_frames(Frames{"", kEnd, "\x93"}).error,
              "live message has sequence ffffffffffffffff, reserved for replay ends");
}

TEST(WireFrames, ReplayBeforeTopicFrame) {
    const ParsedFrames data = parse_replay_frames(Frames{"", kSeq5, "\x93"});
    ASSERT_EQ(data.kind, ParsedFrames::Kind::kData);
    EXPECT_EQ(data.sequence, 5U);
    EXPECT_TRUE(data.topic.empty());
    EXPECT_EQ(parse_replay_frames(Frames{"", kEnd, ""}).kind, ParsedFrames::Kind::kEnd);
}

TEST(WireFrames, ReplayWithTopicFrame) {
    const ParsedFrames data = parse_replay_frames(Frames{"", "kv", kSeq5, "\x93"});
    ASSERT_EQ(data.kind, ParsedFrames::Kind::kData);
    EXPECT_EQ(data.topic, "kv");
    EXPECT_EQ(parse_replay_frames(Frames{"", "", kEnd, ""}).kind, ParsedFrames::Kind::kEnd);
    // Either end signal alone is enough.
    EXPECT_EQ(parse_replay_frames(Frames{"", "", kSeq5, ""}).kind, ParsedFrames::Kind::kEnd);
    EXPECT_EQ(parse_replay_frames(Frames{"", "", kEnd, "\x93"}).kind, ParsedFrames::Kind::kEnd);
}

TEST(WireFrames, MalformedReplay) {
    EXPECT_EQ(parse_replay_frames(Frames{"", kSeq5}).error,
              "replay reply has 2 frames, expected 3 or 4");
    EXPECT_EQ(parse_replay_frames(Frames{"x", kSeq5, "\x93"}).error,
              "replay reply does not start with an empty delimiter frame");
    EXPECT_EQ(parse_replay_frames(Frames{"", "\x05", "\x93"}).error,
              "sequence frame has 1 bytes, expected 8");
}

}  // namespace
}  // namespace kvevents::detail

#include "zmtp_reader.h"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "wire_frames.h"

namespace kvevents::detail {
namespace {

// What a reader reported, as text: one line per greeting, command and message.
class Transcript final : public ZmtpReaderSink {
public:
    void on_greeting() override { lines.emplace_back("greeting"); }
    void on_command(std::string_view name, std::string_view body) override {
        lines.push_back("command " + std::string(name) + " " + std::to_string(body.size()));
    }
    void on_message(std::vector<zmq::message_t>& frames, std::size_t frame_count) override {
        std::string line = "message of " + std::to_string(frame_count) + ":";
        for (const auto& f : frames) line += " [" + std::string(f.to_string_view()) + "]";
        lines.push_back(line);
    }
    std::vector<std::string> lines;
};

// A greeting as libzmq 4.3 sends it: ZMTP 3.1, its padding, NULL mechanism.
std::string publisher_greeting(std::uint8_t major = 3, std::string_view mechanism = "NULL") {
    std::string g(64, '\0');
    g[0] = '\xff';
    g[8] = '\x01';
    g[9] = '\x7f';
    g[10] = static_cast<char>(major);
    g[11] = 1;
    g.replace(12, mechanism.size(), mechanism);
    return g;
}

std::string more_frame(std::string_view body) {
    std::string f = zmtp_message(body);
    f[0] = static_cast<char>(f[0] | 0x01);
    return f;
}

std::string live_message(std::string_view topic, std::uint64_t seq, std::string_view payload) {
    return more_frame(topic) + more_frame(be_u64(seq)) + zmtp_message(payload);
}

std::string frame_with_declared_size(std::uint8_t flags, std::uint64_t size) {
    std::string f(1, static_cast<char>(flags | 0x02));
    f += be_u64(size);
    return f;
}

// A publisher's whole side of a connection, with a long frame, a command between messages, an
// empty payload and a message of more frames than are kept.
std::string publisher_stream(const std::string& long_payload) {
    std::string s = publisher_greeting();
    s += zmtp_command("READY", zmtp_ready_body("PUB"));
    s += live_message("kv@10.0.0.7@m", 1, "short");
    s += zmtp_command("PING", std::string("\0\x0a"
                                          "ctx",
                                          5));
    s += live_message("", 2, long_payload);
    s += live_message("t", 3, "");
    s += more_frame("a") + more_frame("b") + more_frame("c") + more_frame("d") + zmtp_message("e");
    return s;
}

std::vector<std::string> expected_transcript(const std::string& long_payload) {
    return {"greeting",
            "command READY " + std::to_string(zmtp_ready_body("PUB").size()),
            "message of 3: [kv@10.0.0.7@m] [" + be_u64(1) + "] [short]",
            "command PING 5",
            "message of 3: [] [" + be_u64(2) + "] [" + long_payload + "]",
            "message of 3: [t] [" + be_u64(3) + "] []",
            "message of 5: [a] [b] [c] [d]"};
}

TEST(ZmtpReader, ReadsAPublishersStreamHoweverItsBytesAreSplit) {
    const std::string long_payload(70'000, 'p');  // past one 64 KiB read, and a long frame
    const std::string stream = publisher_stream(long_payload);
    const auto expected = expected_transcript(long_payload);

    std::mt19937 rng(20261208);
    for (int run = 0; run < 200; ++run) {
        ZmtpReader reader(16 << 20);
        Transcript t;
        std::size_t at = 0;
        while (at < stream.size()) {
            // Run 0 feeds everything at once, run 1 a byte at a time, the rest random pieces.
            const std::size_t piece = run == 0 ? stream.size()
                                      : run == 1
                                          ? 1
                                          : std::uniform_int_distribution<std::size_t>(1, 300)(rng);
            const auto error = reader.feed(std::string_view(stream).substr(at, piece), t);
            ASSERT_FALSE(error) << "run " << run << ": " << *error;
            at += piece;
        }
        ASSERT_EQ(t.lines, expected) << "run " << run;
    }
}

TEST(ZmtpReader, ReadsWhatItsOwnWritersProduce) {
    ZmtpReader reader(-1);
    Transcript t;
    const std::string stream = zmtp_greeting() + zmtp_command("READY", zmtp_ready_body("SUB")) +
                               zmtp_message(std::string(300, 'x'));
    ASSERT_FALSE(reader.feed(stream, t));
    ASSERT_EQ(t.lines.size(), 3U);
    EXPECT_EQ(t.lines[2], "message of 1: [" + std::string(300, 'x') + "]");
    // 300 bytes need the long form: flags with bit 1, then eight bytes of size.
    EXPECT_EQ(zmtp_message(std::string(300, 'x')).substr(0, 9),
              std::string("\x02", 1) + be_u64(300));
    EXPECT_EQ(zmtp_message("ab"), std::string("\x00\x02"
                                              "ab",
                                              4));
    EXPECT_EQ(zmtp_greeting().substr(10, 6), std::string("\x03\x00NULL", 6));
}

struct BadInput {
    std::string name;
    std::string bytes;
    std::string error_part;
};

TEST(ZmtpReader, EachProtocolErrorIsNamedAndComesAsSoonAsTheBytesShowIt) {
    const std::string ready = zmtp_command("READY", zmtp_ready_body("PUB"));
    const std::string after_handshake = publisher_greeting() + ready;
    const std::vector<BadInput> cases = {
        {"not zmtp", "HTTP/1.1 400 Bad Request\r\n", "does not speak ZMTP"},
        {"zmtp 1.0",
         std::string("\x05\x00"
                     "abcdefghij",
                     12),
         "does not speak ZMTP"},
        {"zmtp 2.0", publisher_greeting(1).substr(0, 11), "revision 1, libzmq before 4.0"},
        {"curve", publisher_greeting(3, "CURVE"), "CURVE security mechanism"},
        {"frame over the limit", after_handshake + frame_with_declared_size(0, 1025),
         "a frame of 1025 bytes, more than max_message_size 1024"},
        {"command with more", after_handshake + std::string("\x05\x01x", 3), "MORE flag"},
        {"command too large", after_handshake + frame_with_declared_size(0x04, 5000),
         "command frame of 5000 bytes"},
        {"command inside a message", after_handshake + more_frame("t") + ready,
         "inside a multipart message"},
        {"command name past its body", after_handshake + std::string("\x04\x02\x09R", 4),
         "malformed name"},
        {"empty command", after_handshake + std::string("\x04\x00", 2), "malformed name"},
    };
    for (const auto& c : cases) {
        ZmtpReader reader(1024);
        Transcript t;
        const auto error = reader.feed(c.bytes, t);
        ASSERT_TRUE(error) << c.name;
        EXPECT_NE(error->find(c.error_part), std::string::npos) << c.name << ": " << *error;
        // After reset() the reader takes a new connection's stream.
        reader.reset();
        Transcript fresh;
        ASSERT_FALSE(reader.feed(after_handshake + live_message("t", 9, "p"), fresh)) << c.name;
        EXPECT_EQ(fresh.lines.size(), 3U) << c.name;
    }
}

TEST(ZmtpReader, AHugeDeclaredFrameIsNeverAllocatedFromItsHeader) {
    // No limit: a frame declared at 2^62 bytes is only gathered as its bytes come, so the first
    // few cost a few bytes, not an allocation of the declared size (which would throw).
    ZmtpReader unlimited(-1);
    Transcript t;
    const std::string head = publisher_greeting() + zmtp_command("READY", zmtp_ready_body("PUB")) +
                             frame_with_declared_size(0, std::uint64_t{1} << 62) + "abc";
    EXPECT_FALSE(unlimited.feed(head, t));
    EXPECT_EQ(t.lines.size(), 2U);
    // With the default limit the header alone is the error.
    ZmtpReader limited(16 << 20);
    Transcript t2;
    const auto error = limited.feed(head, t2);
    ASSERT_TRUE(error);
    EXPECT_NE(error->find("more than max_message_size"), std::string::npos);
}

TEST(ZmtpReader, ReadyPropertiesAreFoundByCaseInsensitiveName) {
    std::string body = zmtp_ready_body("PUB");
    // A second property after Socket-Type, as libzmq adds Identity for some socket types.
    body += std::string("\x08Identity", 9) + be_u64(2).substr(4) + "id";
    EXPECT_EQ(zmtp_property(body, "socket-type"), std::string_view("PUB"));
    EXPECT_EQ(zmtp_property(body, "IDENTITY"), std::string_view("id"));
    EXPECT_FALSE(zmtp_property(body, "Resource"));
    EXPECT_FALSE(zmtp_property(body.substr(0, 5), "Socket-Type"));   // name cut short
    EXPECT_FALSE(zmtp_property(body.substr(0, 17), "Socket-Type"));  // value cut short
    EXPECT_FALSE(zmtp_property("", "Socket-Type"));
}

}  // namespace
}  // namespace kvevents::detail

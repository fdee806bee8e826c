#include "zmtp_reader.h"

#include <algorithm>
#include <cctype>

namespace kvevents::detail {

namespace {

constexpr std::uint8_t kMoreFlag = 0x01;
constexpr std::uint8_t kLongFlag = 0x02;
constexpr std::uint8_t kCommandFlag = 0x04;
constexpr std::size_t kVersionMajorAt = 10;
constexpr std::size_t kMechanismAt = 12;
constexpr std::size_t kMechanismSize = 20;
// A frame body larger than this, once complete, is not kept in `partial_`'s capacity.
constexpr std::size_t kKeptCapacity = 64 * 1024;

std::uint64_t big_endian(std::string_view bytes) {
    std::uint64_t v = 0;
    for (const char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
    return v;
}

void append_big_endian(std::string& out, std::uint64_t value, int width) {
    for (int shift = 8 * (width - 1); shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((value >> shift) & 0xff));
}

std::string frame(std::uint8_t flags, std::string_view body) {
    std::string out;
    const bool is_long = body.size() > 255;
    out.reserve(body.size() + 9);
    out.push_back(static_cast<char>(flags | (is_long ? kLongFlag : 0)));
    append_big_endian(out, body.size(), is_long ? 8 : 1);
    out.append(body);
    return out;
}

bool same_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// Moves up to `want` bytes of `bytes` into `partial`; true once it holds `want`.
bool gather(std::string& partial, std::string_view& bytes, std::size_t want) {
    const std::size_t take = std::min(want - partial.size(), bytes.size());
    partial.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    return partial.size() == want;
}

}  // namespace

void ZmtpReader::reset() {
    phase_ = Phase::kGreeting;
    partial_.clear();
    flags_ = 0;
    frame_size_ = 0;
    frames_.clear();
    frame_count_ = 0;
}

std::optional<std::string> ZmtpReader::feed(std::string_view bytes, ZmtpReaderSink& sink) {
    // An empty frame completes with its header, with no more bytes to come.
    while (!bytes.empty() || (phase_ == Phase::kFrameBody && frame_size_ == 0)) {
        std::optional<std::string> error;
        switch (phase_) {
            case Phase::kGreeting:
                error = take_greeting(bytes, sink);
                break;
            case Phase::kFrameHeader:
                error = take_header(bytes);
                break;
            case Phase::kFrameBody: {
                // The usual case, a whole frame in this read, is taken without copying it first.
                if (partial_.empty() && bytes.size() >= frame_size_) {
                    const auto body = bytes.substr(0, static_cast<std::size_t>(frame_size_));
                    bytes.remove_prefix(body.size());
                    error = frame_complete(body, sink);
                } else if (gather(partial_, bytes, static_cast<std::size_t>(frame_size_))) {
                    error = frame_complete(partial_, sink);
                    partial_.clear();
                    if (partial_.capacity() > kKeptCapacity)
                        std::string().swap(partial_);
                }
                break;
            }
        }
        if (error)
            return error;
    }
    return std::nullopt;
}

std::optional<std::string> ZmtpReader::take_greeting(std::string_view& bytes,
                                                     ZmtpReaderSink& sink) {
    const bool whole = gather(partial_, bytes, kGreetingSize);
    const auto g = std::string_view(partial_);
    if (static_cast<unsigned char>(g[0]) != 0xff || (g.size() > 9 && (g[9] & 0x01) == 0))
        return std::string("the peer does not speak ZMTP (no ZeroMQ greeting)");
    if (g.size() > kVersionMajorAt && static_cast<unsigned char>(g[kVersionMajorAt]) < 3) {
        return "the peer speaks an older ZMTP (revision " +
               std::to_string(static_cast<unsigned char>(g[kVersionMajorAt])) +
               ", libzmq before 4.0); ZMTP 3 is needed";
    }
    if (!whole)
        return std::nullopt;
    std::string_view mechanism = g.substr(kMechanismAt, kMechanismSize);
    mechanism = mechanism.substr(0, mechanism.find('\0'));
    if (mechanism != "NULL") {
        return "the peer asks for the " + std::string(mechanism) +
               " security mechanism; kvevents connects without security (NULL)";
    }
    partial_.clear();
    phase_ = Phase::kFrameHeader;
    sink.on_greeting();
    return std::nullopt;
}

std::optional<std::string> ZmtpReader::take_header(std::string_view& bytes) {
    if (partial_.empty()) {
        flags_ = static_cast<std::uint8_t>(bytes.front());
        bytes.remove_prefix(1);
        partial_.push_back(static_cast<char>(flags_));
    }
    const std::size_t width = (flags_ & kLongFlag) != 0 ? 8 : 1;
    if (!gather(partial_, bytes, 1 + width))
        return std::nullopt;
    frame_size_ = big_endian(std::string_view(partial_).substr(1));
    partial_.clear();
    if ((flags_ & kCommandFlag) != 0) {
        if ((flags_ & kMoreFlag) != 0)
            return std::string("a command frame with the MORE flag");
        if (frame_count_ > 0)
            return std::string("a command frame inside a multipart message");
        if (frame_size_ > kMaxCommandSize) {
            return "a command frame of " + std::to_string(frame_size_) + " bytes (more than " +
                   std::to_string(kMaxCommandSize) + ")";
        }
    } else if (max_frame_size_ >= 0 && frame_size_ > static_cast<std::uint64_t>(max_frame_size_)) {
        return "a frame of " + std::to_string(frame_size_) + " bytes, more than max_message_size " +
               std::to_string(max_frame_size_);
    }
    phase_ = Phase::kFrameBody;
    return std::nullopt;
}

std::optional<std::string> ZmtpReader::frame_complete(std::string_view body, ZmtpReaderSink& sink) {
    phase_ = Phase::kFrameHeader;
    if ((flags_ & kCommandFlag) != 0)
        return command(body, sink);
    ++frame_count_;
    if (frames_.size() < kMaxKeptFrames)
        frames_.emplace_back(body.data(), body.size());
    if ((flags_ & kMoreFlag) == 0) {
        sink.on_message(frames_, frame_count_);
        frames_.clear();
        frame_count_ = 0;
    }
    return std::nullopt;
}

std::optional<std::string> ZmtpReader::command(std::string_view body, ZmtpReaderSink& sink) {
    if (body.empty() || static_cast<unsigned char>(body[0]) > body.size() - 1)
        return std::string("a command frame with a malformed name");
    const auto name_size = static_cast<unsigned char>(body[0]);
    sink.on_command(body.substr(1, name_size), body.substr(1 + name_size));
    return std::nullopt;
}

std::string zmtp_greeting() {
    std::string g(ZmtpReader::kGreetingSize, '\0');
    g[0] = static_cast<char>(0xff);
    g[9] = 0x7f;
    g[kVersionMajorAt] = 3;
    g[kVersionMajorAt + 1] = 0;
    g.replace(kMechanismAt, 4, "NULL");
    return g;
}

std::string zmtp_command(std::string_view name, std::string_view body) {
    std::string b;
    b.push_back(static_cast<char>(name.size()));
    b.append(name);
    b.append(body);
    return frame(kCommandFlag, b);
}

std::string zmtp_ready_body(std::string_view socket_type) {
    constexpr std::string_view kName = "Socket-Type";
    std::string b;
    b.push_back(static_cast<char>(kName.size()));
    b.append(kName);
    append_big_endian(b, socket_type.size(), 4);
    b.append(socket_type);
    return b;
}

std::string zmtp_message(std::string_view body) {
    return frame(0, body);
}

std::optional<std::string_view> zmtp_property(std::string_view ready_body, std::string_view name) {
    std::string_view rest = ready_body;
    while (!rest.empty()) {
        const auto name_size = static_cast<unsigned char>(rest[0]);
        if (rest.size() < 1U + name_size + 4U)
            return std::nullopt;
        const std::string_view key = rest.substr(1, name_size);
        rest.remove_prefix(1U + name_size);
        const std::uint64_t value_size = big_endian(rest.substr(0, 4));
        rest.remove_prefix(4);
        if (value_size > rest.size())
            return std::nullopt;
        const std::string_view value = rest.substr(0, static_cast<std::size_t>(value_size));
        rest.remove_prefix(value.size());
        if (same_ignoring_case(key, name))
            return value;
    }
    return std::nullopt;
}

}  // namespace kvevents::detail

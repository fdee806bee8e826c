#pragma once

// A bounds-checked msgpack pull parser over one contiguous buffer. It reads values in place
// (strings and bins come back as views into the buffer) so decoding builds no object tree, and it
// never trusts a declared length further than the bytes that are actually there.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <kvevents/decode.h>

namespace kvevents::detail {

/// Thrown by the reader on malformed input; the decoder adds the field and event context.
struct ReaderError {
    DecodeErrc code;
    std::size_t offset;
    std::string detail;
};

enum class WireType : std::uint8_t {
    kNil,
    kBool,
    kInt,
    kFloat,
    kString,
    kBinary,
    kArray,
    kMap,
    kExtension,
    kInvalid,
};

const char* wire_type_name(WireType type);

constexpr WireType classify_byte(std::uint8_t b) {
    if (b <= 0x7f || b >= 0xe0)
        return WireType::kInt;
    if (b <= 0x8f)
        return WireType::kMap;
    if (b <= 0x9f)
        return WireType::kArray;
    if (b <= 0xbf)
        return WireType::kString;
    switch (b) {
        case 0xc0:
            return WireType::kNil;
        case 0xc1:
            return WireType::kInvalid;
        case 0xc2:
        case 0xc3:
            return WireType::kBool;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            return WireType::kBinary;
        case 0xc7:
        case 0xc8:
        case 0xc9:
            return WireType::kExtension;
        case 0xca:
        case 0xcb:
            return WireType::kFloat;
        case 0xd9:
        case 0xda:
        case 0xdb:
            return WireType::kString;
        case 0xdc:
        case 0xdd:
            return WireType::kArray;
        case 0xde:
        case 0xdf:
            return WireType::kMap;
        default:
            break;
    }
    if (b >= 0xcc && b <= 0xd3)
        return WireType::kInt;
    return WireType::kExtension;  // 0xd4..0xd8 fixext
}

// One lookup per value instead of a chain of range tests: this runs for every token id.
constexpr std::array<WireType, 256> make_type_table() {
    std::array<WireType, 256> table{};
    for (std::size_t b = 0; b < 256; ++b) table[b] = classify_byte(static_cast<std::uint8_t>(b));
    return table;
}
inline constexpr std::array<WireType, 256> kTypeOfByte = make_type_table();

/// A msgpack integer: its 64-bit pattern and whether it was sent as a negative signed value.
struct WireInt {
    std::uint64_t bits = 0;
    bool negative = false;
};

class MsgpackReader {
public:
    MsgpackReader(const std::uint8_t* data, std::size_t size, std::size_t base_offset = 0)
        : begin_(data), pos_(data), end_(data + size), base_offset_(base_offset) {}

    std::size_t offset() const { return base_offset_ + static_cast<std::size_t>(pos_ - begin_); }
    std::size_t remaining() const { return static_cast<std::size_t>(end_ - pos_); }
    bool at_end() const { return pos_ == end_; }
    const std::uint8_t* position() const { return pos_; }

    /// The type of the next value, without consuming it.
    WireType peek_type() const {
        if (pos_ == end_) {
            fail_end();
        }
        return kTypeOfByte[*pos_];
    }

    void read_nil();
    /// Returns true and consumes a nil if one is next.
    bool try_read_nil() {
        if (pos_ != end_ && *pos_ == 0xc0) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool read_bool();
    WireInt read_int() {
        if (pos_ != end_) {
            const std::uint8_t b = *pos_;
            if (b <= 0x7f) {
                ++pos_;
                return {b, false};  // positive fixint
            }
            // uint8..uint64: token ids and vLLM's hashes; inline because they dominate payloads
            if (b >= 0xcc && b <= 0xcf) {
                const std::size_t width = std::size_t{1} << (b - 0xcc);
                if (static_cast<std::size_t>(end_ - pos_) > width) {
                    const std::uint64_t v = load_be(pos_ + 1, width);
                    pos_ += width + 1;
                    return {v, false};
                }
            }
        }
        return read_int_slow();
    }

    /// Reads up to `count` consecutive integers in [0, INT64_MAX] into `out` and returns how many
    /// it read; stops early, consuming nothing more, at anything else. The fast path for token
    /// ids, which make up most of a payload.
    std::size_t read_uint_run(std::int64_t* out, std::size_t count) {
        // Each width has its own branch with a constant step, so the position of the next id
        // depends on a predicted branch rather than on the byte just loaded: the CPU can run
        // ahead through a block of ids instead of waiting on each one.
        std::size_t n = 0;
        const std::uint8_t* p = pos_;
        while (n < count && p != end_) {
            const std::uint8_t b = *p;
            const auto left = static_cast<std::size_t>(end_ - p);
            if (b <= 0x7f) {
                out[n++] = b;
                p += 1;
            } else if (b == 0xcd && left >= 3) {
                out[n++] = static_cast<std::int64_t>(load_be(p + 1, 2));
                p += 3;
            } else if (b == 0xce && left >= 5) {
                out[n++] = static_cast<std::int64_t>(load_be(p + 1, 4));
                p += 5;
            } else if (b == 0xcc && left >= 2) {
                out[n++] = p[1];
                p += 2;
            } else if (b == 0xcf && left >= 9 && load_be(p + 1, 8) <= INT64_MAX) {
                out[n++] = static_cast<std::int64_t>(load_be(p + 1, 8));
                p += 9;
            } else {
                break;
            }
        }
        pos_ = p;
        return n;
    }

    /// Reads `width` (1, 2, 4 or 8) bytes big-endian; the caller has checked the bounds.
    static std::uint64_t load_be(const std::uint8_t* p, std::size_t width) {
        switch (width) {
            case 1:
                return p[0];
            case 2: {
                std::uint16_t v;
                std::memcpy(&v, p, 2);
                return __builtin_bswap16(v);
            }
            case 4: {
                std::uint32_t v;
                std::memcpy(&v, p, 4);
                return __builtin_bswap32(v);
            }
            default: {
                std::uint64_t v;
                std::memcpy(&v, p, 8);
                return __builtin_bswap64(v);
            }
        }
    }
    /// float64, float32, or an integer converted.
    double read_number();
    std::string_view read_string() {
        if (pos_ != end_ && (*pos_ & 0xe0) == 0xa0) {
            return take_bytes(*pos_++ & 0x1fu);  // fixstr: every key and tag vLLM sends
        }
        return read_string_slow();
    }
    std::string_view read_binary();
    /// Element count; guaranteed not to exceed remaining() bytes.
    std::uint32_t read_array_header() {
        if (pos_ != end_ && (*pos_ & 0xf0) == 0x90) {
            return checked_count(*pos_++ & 0x0fu, 1);
        }
        return read_container_header_slow(WireType::kArray);
    }
    /// Entry count; guaranteed not to exceed remaining() / 2.
    std::uint32_t read_map_header() {
        if (pos_ != end_ && (*pos_ & 0xf0) == 0x80) {
            return checked_count(*pos_++ & 0x0fu, 2);
        }
        return read_container_header_slow(WireType::kMap);
    }

    /// Skips one complete value of any type, nesting at most max_depth deep.
    void skip(std::size_t max_depth);

    [[noreturn]] void fail(DecodeErrc code, std::string detail) const;
    [[noreturn]] void fail_type(const char* expected) const;

private:
    [[noreturn]] void fail_end() const;
    WireInt read_int_slow();
    std::string_view read_string_slow();
    std::uint32_t read_container_header_slow(WireType type);
    std::uint8_t take_byte();
    std::uint64_t take_be(std::size_t width);
    std::string_view take_bytes(std::size_t length) {
        if (static_cast<std::size_t>(end_ - pos_) < length) {
            fail_length(length);
        }
        std::string_view out(reinterpret_cast<const char*>(pos_), length);
        pos_ += length;
        return out;
    }
    [[noreturn]] void fail_length(std::size_t length) const;
    std::uint32_t checked_count(std::uint64_t count, std::size_t min_bytes_each) {
        // Every element takes at least one byte, so a count beyond what is left is a lie;
        // checking here bounds every reservation the decoder makes by the payload's own size.
        if (count > remaining() / min_bytes_each) {
            fail_count(count);
        }
        return static_cast<std::uint32_t>(count);
    }
    [[noreturn]] void fail_count(std::uint64_t count) const;
    void skip_extension_body(std::uint8_t marker);

    const std::uint8_t* begin_;
    const std::uint8_t* pos_;
    const std::uint8_t* end_;
    std::size_t base_offset_;
};

}  // namespace kvevents::detail

#pragma once

// A bounds-checked msgpack pull parser over one contiguous buffer. It reads values in place
// (strings and bins come back as views into the buffer) so decoding builds no object tree, and it
// never trusts a declared length further than the bytes that are actually there.

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
    WireType peek_type() const;

    void read_nil();
    /// Returns true and consumes a nil if one is next.
    bool try_read_nil();
    bool read_bool();
    WireInt read_int();
    /// float64, float32, or an integer converted.
    double read_number();
    std::string_view read_string();
    std::string_view read_binary();
    /// Element count; guaranteed not to exceed remaining() bytes.
    std::uint32_t read_array_header();
    /// Entry count; guaranteed not to exceed remaining() / 2.
    std::uint32_t read_map_header();

    /// Skips one complete value of any type, nesting at most max_depth deep.
    void skip(std::size_t max_depth);

    [[noreturn]] void fail(DecodeErrc code, std::string detail) const;
    [[noreturn]] void fail_type(const char* expected) const;

private:
    std::uint8_t take_byte();
    std::uint64_t take_be(std::size_t width);
    std::string_view take_bytes(std::size_t length);
    std::uint32_t checked_count(std::uint64_t count, std::size_t min_bytes_each);
    void skip_extension_body(std::uint8_t marker);

    const std::uint8_t* begin_;
    const std::uint8_t* pos_;
    const std::uint8_t* end_;
    std::size_t base_offset_;
};

}  // namespace kvevents::detail

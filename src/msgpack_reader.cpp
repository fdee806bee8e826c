#include "msgpack_reader.h"

#include <utility>

namespace kvevents::detail {

const char* wire_type_name(WireType type) {
    switch (type) {
        case WireType::kNil:
            return "nil";
        case WireType::kBool:
            return "bool";
        case WireType::kInt:
            return "int";
        case WireType::kFloat:
            return "float";
        case WireType::kString:
            return "str";
        case WireType::kBinary:
            return "bin";
        case WireType::kArray:
            return "array";
        case WireType::kMap:
            return "map";
        case WireType::kExtension:
            return "ext";
        case WireType::kInvalid:
            return "invalid byte 0xc1";
    }
    return "unknown";
}

void MsgpackReader::fail_end() const {
    fail(DecodeErrc::kTruncated, "payload ends where a value should start");
}

void MsgpackReader::fail(DecodeErrc code, std::string detail) const {
    throw ReaderError{code, offset(), std::move(detail)};
}

void MsgpackReader::fail_type(const char* expected) const {
    const WireType actual = peek_type();
    if (actual == WireType::kInvalid) {
        fail(DecodeErrc::kInvalidByte, "byte 0xc1 is never valid msgpack");
    }
    fail(DecodeErrc::kWrongType,
         std::string("expected ") + expected + ", got " + wire_type_name(actual));
}

std::uint8_t MsgpackReader::take_byte() {
    if (pos_ == end_) {
        fail(DecodeErrc::kTruncated, "payload ends inside a value");
    }
    return *pos_++;
}

std::uint64_t MsgpackReader::take_be(std::size_t width) {
    if (remaining() < width) {
        fail(DecodeErrc::kTruncated, "payload ends inside a " + std::to_string(width) +
                                         "-byte field (" + std::to_string(remaining()) + " left)");
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < width; ++i) {
        v = (v << 8) | pos_[i];
    }
    pos_ += width;
    return v;
}

void MsgpackReader::fail_length(std::size_t length) const {
    fail(DecodeErrc::kLengthExceedsInput, "declared length " + std::to_string(length) +
                                              " exceeds the " + std::to_string(remaining()) +
                                              " bytes left");
}

void MsgpackReader::fail_count(std::uint64_t count) const {
    fail(DecodeErrc::kLengthExceedsInput, "declares " + std::to_string(count) +
                                              " elements but only " + std::to_string(remaining()) +
                                              " bytes are left");
}

void MsgpackReader::read_nil() {
    if (pos_ == end_ || *pos_ != 0xc0) {
        fail_type("nil");
    }
    ++pos_;
}

bool MsgpackReader::read_bool() {
    if (peek_type() != WireType::kBool) {
        fail_type("bool");
    }
    return take_byte() == 0xc3;
}

WireInt MsgpackReader::read_int_slow() {
    if (peek_type() != WireType::kInt) {
        fail_type("int");
    }
    const std::uint8_t b = take_byte();
    if (b <= 0x7f)
        return {b, false};
    if (b >= 0xe0)
        return {static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int8_t>(b))),
                true};
    switch (b) {
        case 0xcc:
            return {take_be(1), false};
        case 0xcd:
            return {take_be(2), false};
        case 0xce:
            return {take_be(4), false};
        case 0xcf:
            return {take_be(8), false};
        default:
            break;
    }
    // Signed forms: sign-extend, and mark negative only when the value really is below zero.
    const std::size_t width = std::size_t{1} << (b - 0xd0);
    const std::uint64_t raw = take_be(width);
    const auto shift = static_cast<unsigned>(64 - 8 * width);
    const auto value = static_cast<std::int64_t>(raw << shift) >> shift;
    return {static_cast<std::uint64_t>(value), value < 0};
}

double MsgpackReader::read_number() {
    const WireType type = peek_type();
    if (type == WireType::kInt) {
        const WireInt v = read_int();
        return v.negative ? static_cast<double>(static_cast<std::int64_t>(v.bits))
                          : static_cast<double>(v.bits);
    }
    if (type != WireType::kFloat) {
        fail_type("float");
    }
    if (take_byte() == 0xca) {
        const auto bits = static_cast<std::uint32_t>(take_be(4));
        float f;
        std::memcpy(&f, &bits, sizeof f);
        return f;
    }
    const std::uint64_t bits = take_be(8);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

std::string_view MsgpackReader::read_string_slow() {
    if (peek_type() != WireType::kString) {
        fail_type("str");
    }
    const std::uint8_t b = take_byte();
    std::size_t length = 0;
    if (b <= 0xbf) {
        length = b & 0x1fu;
    } else {
        length = static_cast<std::size_t>(take_be(std::size_t{1} << (b - 0xd9)));
    }
    return take_bytes(length);
}

std::string_view MsgpackReader::read_binary() {
    if (peek_type() != WireType::kBinary) {
        fail_type("bin");
    }
    const std::uint8_t b = take_byte();
    return take_bytes(static_cast<std::size_t>(take_be(std::size_t{1} << (b - 0xc4))));
}

std::uint32_t MsgpackReader::read_container_header_slow(WireType type) {
    if (peek_type() != type) {
        fail_type(type == WireType::kArray ? "array" : "map");
    }
    const std::uint8_t b = take_byte();
    std::uint64_t count = 0;
    if (b < 0xa0) {
        count = b & 0x0fu;  // fixmap / fixarray
    } else {
        count = take_be(b == 0xdc || b == 0xde ? 2 : 4);
    }
    return checked_count(count, type == WireType::kArray ? 1 : 2);
}

void MsgpackReader::skip_extension_body(std::uint8_t marker) {
    std::size_t length = 0;
    if (marker >= 0xd4 && marker <= 0xd8) {
        length = std::size_t{1} << (marker - 0xd4);
    } else {
        length = static_cast<std::size_t>(take_be(std::size_t{1} << (marker - 0xc7)));
    }
    take_bytes(1);  // the extension's type byte
    take_bytes(length);
}

void MsgpackReader::skip(std::size_t max_depth) {
    // Iterative, with a count of values still owed, so depth costs no native stack.
    std::uint64_t owed = 1;
    std::size_t depth = 0;
    // Remaining element counts of the open containers; depth is bounded by max_depth.
    std::uint64_t stack[64];
    const std::size_t limit = max_depth < 64 ? max_depth : 64;
    while (true) {
        while (owed == 0) {
            if (depth == 0)
                return;
            owed = stack[--depth];
        }
        --owed;
        switch (peek_type()) {
            case WireType::kInvalid:
                fail(DecodeErrc::kInvalidByte, "byte 0xc1 is never valid msgpack");
            case WireType::kNil:
            case WireType::kBool:
                take_byte();
                break;
            case WireType::kInt:
                read_int();
                break;
            case WireType::kFloat:
                read_number();
                break;
            case WireType::kString:
                read_string();
                break;
            case WireType::kBinary:
                read_binary();
                break;
            case WireType::kExtension:
                skip_extension_body(take_byte());
                break;
            case WireType::kArray:
            case WireType::kMap: {
                const bool is_map = peek_type() == WireType::kMap;
                const std::uint64_t count = is_map ? std::uint64_t{read_map_header()} * 2
                                                   : std::uint64_t{read_array_header()};
                if (count == 0)
                    break;
                if (depth >= limit) {
                    fail(DecodeErrc::kTooDeep,
                         "nesting deeper than " + std::to_string(limit) + " levels");
                }
                stack[depth++] = owed;
                owed = count;
                break;
            }
        }
    }
}

}  // namespace kvevents::detail

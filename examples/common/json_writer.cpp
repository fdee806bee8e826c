#include "json_writer.h"

#include <charconv>
#include <cmath>

#include <kvevents/hex.h>

namespace kvevents::cli {

void JsonWriter::before_value() {
    if (need_comma_) {
        out_.push_back(',');
    }
    need_comma_ = true;
}

void JsonWriter::begin_object() {
    before_value();
    out_.push_back('{');
    need_comma_ = false;
}

void JsonWriter::end_object() {
    out_.push_back('}');
    need_comma_ = true;
}

void JsonWriter::begin_array() {
    before_value();
    out_.push_back('[');
    need_comma_ = false;
}

void JsonWriter::end_array() {
    out_.push_back(']');
    need_comma_ = true;
}

void JsonWriter::key(std::string_view name) {
    string(name);
    out_.push_back(':');
    need_comma_ = false;
}

void JsonWriter::null() {
    raw("null");
}

void JsonWriter::boolean(bool value) {
    raw(value ? "true" : "false");
}

void JsonWriter::number(std::int64_t value) {
    raw(std::to_string(value));
}

void JsonWriter::number(std::uint64_t value) {
    raw(std::to_string(value));
}

void JsonWriter::number(double value) {
    if (!std::isfinite(value)) {
        null();
        return;
    }
    char buf[32];
    const auto res = std::to_chars(buf, buf + sizeof buf, value);
    raw(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
}

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 if it is not one.
std::size_t utf8_sequence_length(std::string_view s) {
    const auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = at(0);
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xbf;  // the allowed range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        low = lead == 0xe0 ? 0xa0 : 0x80;
        high = lead == 0xed ? 0x9f : 0xbf;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        low = lead == 0xf0 ? 0x90 : 0x80;
        high = lead == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (s.size() < length || at(1) < low || at(1) > high)
        return 0;
    for (std::size_t i = 2; i < length; ++i) {
        if (at(i) < 0x80 || at(i) > 0xbf)
            return 0;
    }
    return length;
}

}  // namespace

void JsonWriter::string(std::string_view value) {
    before_value();
    static constexpr char kHex[] = "0123456789abcdef";
    out_.push_back('"');
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x80) {
            // Valid UTF-8 passes through; each byte of anything else becomes U+FFFD, so every
            // line is valid JSON whatever a publisher put in its strings.
            const std::size_t length = utf8_sequence_length(value.substr(i));
            if (length == 0) {
                out_ += "\\ufffd";
            } else {
                out_.append(value.substr(i, length));
                i += length - 1;
            }
            continue;
        }
        switch (c) {
            case '"':
                out_ += "\\\"";
                break;
            case '\\':
                out_ += "\\\\";
                break;
            case '\n':
                out_ += "\\n";
                break;
            case '\r':
                out_ += "\\r";
                break;
            case '\t':
                out_ += "\\t";
                break;
            default:
                if (b < 0x20) {
                    out_ += "\\u00";
                    out_.push_back(kHex[b >> 4]);
                    out_.push_back(kHex[b & 0x0f]);
                } else {
                    out_.push_back(c);
                }
        }
    }
    out_.push_back('"');
}

void JsonWriter::hex_string(std::string_view bytes) {
    string(kvevents::to_hex(bytes));
}

void JsonWriter::raw(std::string_view json) {
    before_value();
    out_ += json;
}

void JsonWriter::clear() {
    out_.clear();
    need_comma_ = false;
}

}  // namespace kvevents::cli

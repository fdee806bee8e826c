#include "json_writer.h"

#include <charconv>
#include <cmath>

#include <kvevents/hex.h>

#include "utf8.h"

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

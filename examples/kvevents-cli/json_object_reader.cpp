#include "json_object_reader.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

namespace kvevents::cli {
namespace {

class Reader {
public:
    explicit Reader(std::string_view text) : text_(text) {}

    JsonObject object() {
        skip_space();
        expect('{');
        JsonObject out;
        skip_space();
        if (peek() == '}') {
            ++pos_;
        } else {
            while (true) {
                skip_space();
                const std::size_t key_at = pos_;
                std::string key = string();
                skip_space();
                expect(':');
                skip_space();
                JsonScalar value = scalar();
                if (!out.emplace(std::move(key), std::move(value)).second)
                    fail_at(key_at, "the key appears twice");
                skip_space();
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                expect('}');
                break;
            }
        }
        skip_space();
        if (pos_ != text_.size())
            fail("unexpected text after the object");
        return out;
    }

private:
    [[noreturn]] void fail_at(std::size_t at, const std::string& what) const {
        throw std::invalid_argument("column " + std::to_string(at + 1) + ": " + what);
    }
    [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                       text_[pos_] == '\r' || text_[pos_] == '\n'))
            ++pos_;
    }
    void expect(char c) {
        if (peek() != c)
            fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    bool take_word(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word)
            return false;
        pos_ += word.size();
        return true;
    }

    JsonScalar scalar() {
        const char c = peek();
        if (c == '"')
            return string();
        if (take_word("true"))
            return true;
        if (take_word("false"))
            return false;
        if (take_word("null"))
            return nullptr;
        if (c == '-' || (c >= '0' && c <= '9'))
            return number();
        if (c == '{' || c == '[')
            fail("values must be strings, numbers, booleans or null");
        fail("expected a value");
    }

    double number() {
        const std::size_t start = pos_;
        if (peek() == '-')
            ++pos_;
        if (peek() == '0') {
            ++pos_;
        } else if (!digits()) {
            fail_at(start, "malformed number");
        }
        if (peek() == '.') {
            ++pos_;
            if (!digits())
                fail_at(start, "malformed number");
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-')
                ++pos_;
            if (!digits())
                fail_at(start, "malformed number");
        }
        const std::string literal(text_.substr(start, pos_ - start));
        const double value = std::strtod(literal.c_str(), nullptr);
        if (!std::isfinite(value))
            fail_at(start, "number out of range");
        return value;
    }

    bool digits() {
        const std::size_t start = pos_;
        while (peek() >= '0' && peek() <= '9') ++pos_;
        return pos_ > start;
    }

    std::string string() {
        expect('"');
        std::string out;
        while (true) {
            if (pos_ >= text_.size())
                fail("unterminated string");
            const char c = text_[pos_++];
            if (c == '"')
                return out;
            if (static_cast<unsigned char>(c) < 0x20)
                fail_at(pos_ - 1, "control character in a string");
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            const char e = peek();
            ++pos_;
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out.push_back(e);
                    break;
                case 'b':
                    out.push_back('\b');
                    break;
                case 'f':
                    out.push_back('\f');
                    break;
                case 'n':
                    out.push_back('\n');
                    break;
                case 'r':
                    out.push_back('\r');
                    break;
                case 't':
                    out.push_back('\t');
                    break;
                case 'u':
                    append_utf8(out, code_point());
                    break;
                default:
                    fail_at(pos_ - 1, "unknown escape");
            }
        }
    }

    std::uint32_t hex4() {
        if (pos_ + 4 > text_.size())
            fail("short \\u escape");
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = text_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= static_cast<std::uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= static_cast<std::uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= static_cast<std::uint32_t>(c - 'A' + 10);
            } else {
                fail_at(pos_ - 1, "bad hex digit in a \\u escape");
            }
        }
        return v;
    }

    std::uint32_t code_point() {
        const std::uint32_t high = hex4();
        if (high < 0xD800 || high > 0xDFFF)
            return high;
        if (high > 0xDBFF || !take_word("\\u"))
            fail("unpaired surrogate in a \\u escape");
        const std::uint32_t low = hex4();
        if (low < 0xDC00 || low > 0xDFFF)
            fail("unpaired surrogate in a \\u escape");
        return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        const auto byte = [&out](std::uint32_t b) { out.push_back(static_cast<char>(b)); };
        if (cp < 0x80) {
            byte(cp);
        } else if (cp < 0x800) {
            byte(0xC0 | (cp >> 6));
            byte(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            byte(0xE0 | (cp >> 12));
            byte(0x80 | ((cp >> 6) & 0x3F));
            byte(0x80 | (cp & 0x3F));
        } else {
            byte(0xF0 | (cp >> 18));
            byte(0x80 | ((cp >> 12) & 0x3F));
            byte(0x80 | ((cp >> 6) & 0x3F));
            byte(0x80 | (cp & 0x3F));
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace

JsonObject read_flat_json_object(std::string_view text) {
    return Reader(text).object();
}

}  // namespace kvevents::cli

#include "strict_json.h"

#include <cstdint>

namespace kvevents::test {
namespace {

class StrictJsonChecker {
public:
    explicit StrictJsonChecker(std::string_view text) : text_(text) {}

    std::optional<std::string> check() {
        skip_whitespace();
        if (!value())
            return error_;
        skip_whitespace();
        if (pos_ != text_.size())
            return fail("trailing characters after the value");
        return std::nullopt;
    }

private:
    static constexpr int kMaxDepth = 1000;  // deeper than any output we make; bounds the stack

    bool at_end() const { return pos_ >= text_.size(); }
    unsigned char peek() const { return static_cast<unsigned char>(text_[pos_]); }

    std::optional<std::string> fail(const std::string& what) {
        error_ = what + " at byte " + std::to_string(pos_);
        return error_;
    }
    bool failed(const std::string& what) {
        fail(what);
        return false;
    }

    void skip_whitespace() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
            ++pos_;
    }

    bool literal(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word)
            return failed("unknown literal");
        pos_ += word.size();
        return true;
    }

    bool value() {
        if (at_end())
            return failed("a value expected, end of text found");
        switch (peek()) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return string();
            case 't':
                return literal("true");
            case 'f':
                return literal("false");
            case 'n':
                return literal("null");
            default:
                if (peek() == '-' || (peek() >= '0' && peek() <= '9'))
                    return number();
                return failed("not the start of a value");
        }
    }

    bool object() {
        if (++depth_ > kMaxDepth)
            return failed("nesting too deep");
        ++pos_;  // '{'
        skip_whitespace();
        if (!at_end() && peek() == '}') {
            ++pos_;
            --depth_;
            return true;
        }
        while (true) {
            skip_whitespace();
            if (at_end() || peek() != '"')
                return failed("an object key (a string) expected");
            if (!string())
                return false;
            skip_whitespace();
            if (at_end() || peek() != ':')
                return failed("':' expected after an object key");
            ++pos_;
            skip_whitespace();
            if (!value())
                return false;
            skip_whitespace();
            if (at_end())
                return failed("unterminated object");
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == '}') {
                ++pos_;
                --depth_;
                return true;
            }
            return failed("',' or '}' expected in an object");
        }
    }

    bool array() {
        if (++depth_ > kMaxDepth)
            return failed("nesting too deep");
        ++pos_;  // '['
        skip_whitespace();
        if (!at_end() && peek() == ']') {
            ++pos_;
            --depth_;
            return true;
        }
        while (true) {
            skip_whitespace();
            if (!value())
                return false;
            skip_whitespace();
            if (at_end())
                return failed("unterminated array");
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == ']') {
                ++pos_;
                --depth_;
                return true;
            }
            return failed("',' or ']' expected in an array");
        }
    }

    bool digits() {
        const std::size_t start = pos_;
        while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
        return pos_ > start;
    }

    // number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT )
    bool number() {
        if (peek() == '-')
            ++pos_;
        if (at_end())
            return failed("a digit expected after '-'");
        if (peek() == '0') {
            ++pos_;
            if (!at_end() && peek() >= '0' && peek() <= '9')
                return failed("a leading zero");
        } else if (!digits()) {
            return failed("a digit expected");
        }
        if (!at_end() && peek() == '.') {
            ++pos_;
            if (!digits())
                return failed("a digit expected after '.'");
        }
        if (!at_end() && (peek() == 'e' || peek() == 'E')) {
            ++pos_;
            if (!at_end() && (peek() == '+' || peek() == '-'))
                ++pos_;
            if (!digits())
                return failed("a digit expected in the exponent");
        }
        return true;
    }

    // Four hex digits after "\u"; nullopt when they are not.
    std::optional<std::uint32_t> hex4() {
        if (text_.size() - pos_ < 4)
            return std::nullopt;
        std::uint32_t unit = 0;
        for (int i = 0; i < 4; ++i) {
            const std::uint32_t c = peek();
            std::uint32_t digit = 0;
            if (c >= '0' && c <= '9') {
                digit = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                digit = c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                digit = c - 'A' + 10;
            } else {
                return std::nullopt;
            }
            unit = unit * 16 + digit;
            ++pos_;
        }
        return unit;
    }

    bool escape() {
        ++pos_;  // '\\'
        if (at_end())
            return failed("unterminated escape");
        const unsigned char c = peek();
        ++pos_;
        switch (c) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                return true;
            case 'u':
                break;
            default:
                return failed("an unknown escape");
        }
        const auto unit = hex4();
        if (!unit)
            return failed("four hex digits expected after \\u");
        if (*unit >= 0xdc00 && *unit <= 0xdfff)
            return failed("a lone low surrogate");
        if (*unit >= 0xd800 && *unit <= 0xdbff) {
            if (text_.substr(pos_, 2) != "\\u")
                return failed("a high surrogate without its low surrogate");
            pos_ += 2;
            const auto low = hex4();
            if (!low || *low < 0xdc00 || *low > 0xdfff)
                return failed("a high surrogate without its low surrogate");
        }
        return true;
    }

    // One UTF-8 encoded code point, decoded and checked against RFC 3629's limits.
    bool utf8_code_point() {
        const unsigned char lead = peek();
        std::size_t continuation = 0;
        std::uint32_t code_point = 0;
        std::uint32_t smallest = 0;
        if (lead >= 0xc0 && lead <= 0xdf) {
            continuation = 1;
            code_point = lead & 0x1fU;
            smallest = 0x80;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            continuation = 2;
            code_point = lead & 0x0fU;
            smallest = 0x800;
        } else if (lead >= 0xf0 && lead <= 0xf7) {
            continuation = 3;
            code_point = lead & 0x07U;
            smallest = 0x10000;
        } else {
            return failed("a byte that cannot start a UTF-8 sequence");
        }
        ++pos_;
        for (std::size_t i = 0; i < continuation; ++i) {
            if (at_end() || (peek() & 0xc0U) != 0x80)
                return failed("a truncated UTF-8 sequence");
            code_point = (code_point << 6) | (peek() & 0x3fU);
            ++pos_;
        }
        if (code_point < smallest)
            return failed("an overlong UTF-8 sequence");
        if (code_point >= 0xd800 && code_point <= 0xdfff)
            return failed("a UTF-8 encoded surrogate");
        if (code_point > 0x10ffff)
            return failed("a code point above U+10FFFF");
        return true;
    }

    bool string() {
        ++pos_;  // '"'
        while (true) {
            if (at_end())
                return failed("unterminated string");
            const unsigned char c = peek();
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c < 0x20)
                return failed("an unescaped control character in a string");
            if (c == '\\') {
                if (!escape())
                    return false;
            } else if (c >= 0x80) {
                if (!utf8_code_point())
                    return false;
            } else {
                ++pos_;
            }
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    int depth_ = 0;
    std::string error_;
};

}  // namespace

std::optional<std::string> strict_json_error(std::string_view text) {
    return StrictJsonChecker(text).check();
}

}  // namespace kvevents::test

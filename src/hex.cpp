#include "hex.h"

#include <stdexcept>
#include <string>

#include <kvevents/hex.h>

namespace kvevents::detail {

void append_hex(std::string& out, const std::uint8_t* data, std::size_t size) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + 2 * size);
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(kHex[data[i] >> 4]);
        out.push_back(kHex[data[i] & 0x0f]);
    }
}

}  // namespace kvevents::detail

namespace kvevents {

std::string to_hex(std::string_view bytes) {
    std::string out;
    detail::append_hex(out, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return out;
}

namespace {
int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
}  // namespace

std::string from_hex(std::string_view hex) {
    std::string out;
    out.reserve(hex.size() / 2);
    int high = -1;
    for (std::size_t i = 0; i < hex.size(); ++i) {
        const char c = hex[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        const int d = hex_digit(c);
        if (d < 0) {
            throw std::invalid_argument("invalid hex character '" + std::string(1, c) +
                                        "' at position " + std::to_string(i));
        }
        if (high < 0) {
            high = d;
        } else {
            out.push_back(static_cast<char>((high << 4) | d));
            high = -1;
        }
    }
    if (high >= 0) {
        throw std::invalid_argument("odd number of hex digits");
    }
    return out;
}

}  // namespace kvevents

#include "hex.h"

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

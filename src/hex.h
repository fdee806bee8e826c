#pragma once

// Lowercase hex, for digests in BlockHash::to_string and for kvevents/hex.h.

#include <cstddef>
#include <cstdint>
#include <string>

namespace kvevents::detail {

/// Appends two lowercase hex digits per byte.
void append_hex(std::string& out, const std::uint8_t* data, std::size_t size);

}  // namespace kvevents::detail

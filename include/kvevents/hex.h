#pragma once

// Hex text for payloads and digests: what `kvevents-cli decode` reads, and how captured payloads
// are usually stored.

#include <string>
#include <string_view>

namespace kvevents {

/// Lowercase hex of arbitrary bytes, two digits per byte.
std::string to_hex(std::string_view bytes);

/// Parses hex (whitespace ignored, either case). Throws std::invalid_argument on an odd digit
/// count, or naming the character and its position on a non-hex one.
std::string from_hex(std::string_view hex);

}  // namespace kvevents

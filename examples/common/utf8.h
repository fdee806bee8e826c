#pragma once

#include <cstddef>
#include <string_view>

namespace kvevents::cli {

/// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms,
/// no surrogates, nothing above U+10FFFF), or 0 if it is not one. `s` must not be empty.
std::size_t utf8_sequence_length(std::string_view s);

/// True when `line` is text a person could have typed: well-formed UTF-8 with no control
/// characters but tab, carriage return, vertical tab and form feed (so no NUL).
bool is_text_line(std::string_view line);

}  // namespace kvevents::cli

#pragma once

// A strict RFC 8259 JSON checker for the CLI's output, written independently of the CLI's writer:
// exactly one value with optional whitespace around it, UTF-8 that is well formed (RFC 3629),
// \u escapes whose surrogates come in pairs, and numbers exactly as the grammar allows.

#include <optional>
#include <string>
#include <string_view>

namespace kvevents::test {

/// nullopt when `text` is one valid JSON text; otherwise what is wrong and at which byte.
std::optional<std::string> strict_json_error(std::string_view text);

}  // namespace kvevents::test

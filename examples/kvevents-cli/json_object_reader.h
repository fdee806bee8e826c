#pragma once

// Reads one line of JSON that is a flat object (string, number, boolean or null values), as the
// pods file holds them. Strict RFC 8259 syntax; a mistake is reported with its column.

#include <map>
#include <string>
#include <string_view>
#include <variant>

namespace kvevents::cli {

using JsonScalar = std::variant<std::nullptr_t, bool, double, std::string>;
using JsonObject = std::map<std::string, JsonScalar>;

/// Throws std::invalid_argument naming what is wrong and where ("column 12: ...").
JsonObject read_flat_json_object(std::string_view text);

}  // namespace kvevents::cli

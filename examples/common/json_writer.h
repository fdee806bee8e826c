#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kvevents::cli {

/// Appends compact JSON to a string. Commas are placed automatically; the caller keeps objects
/// and arrays balanced.
class JsonWriter {
public:
    void begin_object();
    void end_object();
    void begin_array();
    void end_array();
    void key(std::string_view name);

    void null();
    void boolean(bool value);
    void number(std::int64_t value);
    void number(std::uint64_t value);
    void number(double value);  // non-finite values become null
    void string(std::string_view value);
    void hex_string(std::string_view bytes);
    /// Writes pre-formatted JSON text (e.g. a decimal integer kept exactly as sent).
    void raw(std::string_view json);

    const std::string& str() const { return out_; }
    void clear();

private:
    void before_value();

    std::string out_;
    bool need_comma_ = false;
};

}  // namespace kvevents::cli

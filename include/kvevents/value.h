#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvevents {

/// A generic msgpack value, used for fields whose shape the protocol leaves open (extra_keys
/// entries, ownership, session_id, keys a newer publisher adds). Scalars live in the matching
/// member; kString and kBytes use `text` (raw bytes for kBytes); kArray holds its elements in
/// `items`, kMap holds key, value, key, value, ... in `items`.
struct Value {
    enum class Kind : std::uint8_t {
        kNil,
        kBool,
        kInt,
        kUint,
        kFloat,
        kString,
        kBytes,
        kArray,
        kMap
    };

    Kind kind = Kind::kNil;
    bool boolean = false;
    std::int64_t int_value = 0;    // kInt (always negative: non-negative integers are kUint)
    std::uint64_t uint_value = 0;  // kUint
    double float_value = 0;        // kFloat
    std::string text;              // kString, kBytes
    std::vector<Value> items;      // kArray, kMap

    bool is_nil() const { return kind == Kind::kNil; }

    static Value string(std::string s);
    static Value unsigned_integer(std::uint64_t u);
    static Value signed_integer(std::int64_t i);

    friend bool operator==(const Value& a, const Value& b);
    friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }
};

/// A field that kvevents does not model, kept by name so nothing a publisher sends is lost.
struct NamedValue {
    std::string name;
    Value value;

    friend bool operator==(const NamedValue& a, const NamedValue& b) {
        return a.name == b.name && a.value == b.value;
    }
};

}  // namespace kvevents

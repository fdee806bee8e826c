#include <utility>

#include <kvevents/value.h>

namespace kvevents {

Value Value::string(std::string s) {
    Value v;
    v.kind = Kind::kString;
    v.text = std::move(s);
    return v;
}

Value Value::unsigned_integer(std::uint64_t u) {
    Value v;
    v.kind = Kind::kUint;
    v.uint_value = u;
    return v;
}

Value Value::signed_integer(std::int64_t i) {
    if (i >= 0)
        return unsigned_integer(static_cast<std::uint64_t>(i));
    Value v;
    v.kind = Kind::kInt;
    v.int_value = i;
    return v;
}

bool operator==(const Value& a, const Value& b) {
    if (a.kind != b.kind)
        return false;
    switch (a.kind) {
        case Value::Kind::kNil:
            return true;
        case Value::Kind::kBool:
            return a.boolean == b.boolean;
        case Value::Kind::kInt:
            return a.int_value == b.int_value;
        case Value::Kind::kUint:
            return a.uint_value == b.uint_value;
        case Value::Kind::kFloat:
            return a.float_value == b.float_value;
        case Value::Kind::kString:
        case Value::Kind::kBytes:
            return a.text == b.text;
        case Value::Kind::kArray:
        case Value::Kind::kMap:
            return a.items == b.items;
    }
    return false;
}

}  // namespace kvevents

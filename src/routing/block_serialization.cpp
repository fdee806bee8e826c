#include "block_serialization.h"

#include <stdexcept>

namespace kvevents::detail {
namespace {

// --- pickle protocol 5 ------------------------------------------------------------------------

constexpr char kProto = '\x80';
constexpr char kFrame = '\x95';
constexpr char kStop = '.';
constexpr char kNone = 'N';
constexpr char kTrue = '\x88';
constexpr char kFalse = '\x89';
constexpr char kBinInt1 = 'K';
constexpr char kBinInt2 = 'M';
constexpr char kBinInt = 'J';
constexpr char kLong1 = '\x8a';
constexpr char kShortBinBytes = 'C';
constexpr char kBinBytes = 'B';
constexpr char kShortBinUnicode = '\x8c';
constexpr char kBinUnicode = 'X';
constexpr char kEmptyTuple = ')';
constexpr char kMark = '(';
constexpr char kTuple = 't';
constexpr char kTuple1 = '\x85';
constexpr char kMemoize = '\x94';
constexpr char kBinGet = 'h';
constexpr char kLongBinGet = 'j';

constexpr std::size_t kPickleHeaderSize = 11;  // PROTO 5, FRAME and its 8-byte length
// CPython starts a new frame past this; one frame is all that is reproduced.
constexpr std::size_t kFrameSizeTarget = 64 * 1024;

void append_le(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void append_be(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

class PickleWriter {
public:
    explicit PickleWriter(std::string& out) : out_(out) {
        out_.clear();
        out_.push_back(kProto);
        out_.push_back('\x05');
        out_.push_back(kFrame);
        out_.append(8, '\0');  // the frame's length, known at finish()
    }

    void finish() {
        out_.push_back(kStop);
        const std::size_t frame = out_.size() - kPickleHeaderSize;
        if (frame >= kFrameSizeTarget)
            throw std::length_error("a block's pickle above 64 KiB would span pickle frames");
        for (std::size_t i = 0; i < 8; ++i)
            out_[3 + i] = static_cast<char>((frame >> (8 * i)) & 0xff);
    }

    void none() { out_.push_back(kNone); }
    void boolean(bool value) { out_.push_back(value ? kTrue : kFalse); }

    void integer(std::int64_t value) {
        if (value >= 0 && value <= 0xff) {
            out_.push_back(kBinInt1);
            out_.push_back(static_cast<char>(value));
        } else if (value >= 0 && value <= 0xffff) {
            out_.push_back(kBinInt2);
            append_le(out_, static_cast<std::uint64_t>(value), 2);
        } else if (value >= -0x80000000LL && value <= 0x7fffffffLL) {
            out_.push_back(kBinInt);
            append_le(out_, static_cast<std::uint64_t>(value), 4);
        } else {
            long1(static_cast<std::uint64_t>(value), value < 0);
        }
    }

    void unsigned_integer(std::uint64_t value) {
        if (value <= 0x7fffffffULL)
            integer(static_cast<std::int64_t>(value));
        else
            long1(value, false);
    }

    void bytes(std::string_view data) {
        if (repeat_of_shared(data, true))
            return;
        if (data.size() < 256) {
            out_.push_back(kShortBinBytes);
            out_.push_back(static_cast<char>(data.size()));
        } else {
            out_.push_back(kBinBytes);
            append_le(out_, data.size(), 4);
        }
        out_.append(data);
        memoize_shared(data, true);
    }

    void text(std::string_view utf8) {
        if (repeat_of_shared(utf8, false))
            return;
        if (utf8.size() < 256) {
            out_.push_back(kShortBinUnicode);
            out_.push_back(static_cast<char>(utf8.size()));
        } else {
            out_.push_back(kBinUnicode);
            append_le(out_, utf8.size(), 4);
        }
        out_.append(utf8);
        memoize_shared(utf8, false);
    }

    template <class WriteItems>
    void tuple(std::size_t size, WriteItems&& write_items) {
        if (size == 0) {
            out_.push_back(kEmptyTuple);
            return;
        }
        if (size > 3)
            out_.push_back(kMark);
        write_items();
        out_.push_back(size > 3 ? kTuple
                                : static_cast<char>(kTuple1 + static_cast<char>(size - 1)));
        memoize();
    }

private:
    // Python's encode_long: the shortest little-endian two's complement, sized from the
    // magnitude's bit length as CPython sizes it.
    void long1(std::uint64_t bits, bool negative) {
        std::uint8_t le[9];
        for (int i = 0; i < 8; ++i) le[i] = static_cast<std::uint8_t>(bits >> (8 * i));
        le[8] = negative ? 0xff : 0x00;
        const std::uint64_t magnitude = negative ? ~bits + 1 : bits;
        int bit_length = 0;
        for (std::uint64_t m = magnitude; m != 0; m >>= 1) ++bit_length;
        std::size_t size = static_cast<std::size_t>(bit_length >> 3) + 1;
        if (negative && size > 1 && le[size - 1] == 0xff && (le[size - 2] & 0x80) != 0)
            --size;
        out_.push_back(kLong1);
        out_.push_back(static_cast<char>(size));
        out_.append(reinterpret_cast<const char*>(le), size);
    }

    void memoize() {
        out_.push_back(kMemoize);
        ++memo_size_;
    }

    // CPython keeps one object for "", b"", each one-byte bytes and each one-character str of a
    // Latin-1 code point, and pickle writes a second occurrence of an object as a reference to
    // its first. Longer strings are distinct objects in a request's keys.
    static bool is_shared_object(std::string_view data, bool is_bytes) {
        if (data.size() <= 1)
            return true;
        const auto lead = static_cast<unsigned char>(data[0]);
        return !is_bytes && data.size() == 2 && (lead == 0xc2 || lead == 0xc3);
    }

    bool repeat_of_shared(std::string_view data, bool is_bytes) {
        if (!is_shared_object(data, is_bytes))
            return false;
        for (const Shared& s : shared_) {
            if (s.is_bytes == is_bytes && s.data == data) {
                if (s.memo_index < 256) {
                    out_.push_back(kBinGet);
                    out_.push_back(static_cast<char>(s.memo_index));
                } else {
                    out_.push_back(kLongBinGet);
                    append_le(out_, s.memo_index, 4);
                }
                return true;
            }
        }
        return false;
    }

    void memoize_shared(std::string_view data, bool is_bytes) {
        if (is_shared_object(data, is_bytes))
            shared_.push_back(Shared{data, is_bytes, memo_size_});
        memoize();
    }

    struct Shared {
        std::string_view data;
        bool is_bytes;
        std::uint32_t memo_index;
    };

    std::string& out_;
    std::uint32_t memo_size_ = 0;
    std::vector<Shared> shared_;
};

// --- canonical CBOR ---------------------------------------------------------------------------

class CborWriter {
public:
    explicit CborWriter(std::string& out) : out_(out) { out_.clear(); }

    void finish() {}
    void none() { out_.push_back('\xf6'); }
    void boolean(bool value) { out_.push_back(value ? '\xf5' : '\xf4'); }
    void integer(std::int64_t value) {
        if (value >= 0)
            head(0, static_cast<std::uint64_t>(value));
        else
            head(1, ~static_cast<std::uint64_t>(value));  // -1 - value
    }
    void unsigned_integer(std::uint64_t value) { head(0, value); }
    void bytes(std::string_view data) {
        head(2, data.size());
        out_.append(data);
    }
    void text(std::string_view utf8) {
        head(3, utf8.size());
        out_.append(utf8);
    }
    template <class WriteItems>
    void tuple(std::size_t size, WriteItems&& write_items) {
        head(4, size);
        write_items();
    }

private:
    void head(std::uint8_t major, std::uint64_t value) {
        const auto type = static_cast<std::uint8_t>(major << 5);
        if (value < 24) {
            out_.push_back(static_cast<char>(type | value));
        } else if (value <= 0xff) {
            out_.push_back(static_cast<char>(type | 24));
            append_be(out_, value, 1);
        } else if (value <= 0xffff) {
            out_.push_back(static_cast<char>(type | 25));
            append_be(out_, value, 2);
        } else if (value <= 0xffffffffULL) {
            out_.push_back(static_cast<char>(type | 26));
            append_be(out_, value, 4);
        } else {
            out_.push_back(static_cast<char>(type | 27));
            append_be(out_, value, 8);
        }
    }

    std::string& out_;
};

// --- the block's value, for either writer -------------------------------------------------------

template <class Writer>
void write_value(Writer& w, const Value& v) {
    switch (v.kind) {
        case Value::Kind::kNil:
            w.none();
            return;
        case Value::Kind::kBool:
            w.boolean(v.boolean);
            return;
        case Value::Kind::kInt:
            w.integer(v.int_value);
            return;
        case Value::Kind::kUint:
            w.unsigned_integer(v.uint_value);
            return;
        case Value::Kind::kString:
            w.text(v.text);
            return;
        case Value::Kind::kBytes:
            w.bytes(v.text);
            return;
        case Value::Kind::kArray:
            w.tuple(v.items.size(), [&] {
                for (const Value& item : v.items) write_value(w, item);
            });
            return;
        case Value::Kind::kFloat:
        case Value::Kind::kMap:
            break;
    }
    throw std::invalid_argument("an extra key is a float or a map, which vLLM never hashes");
}

template <class Writer>
void write_block(Writer& w, const BlockValue& block) {
    w.tuple(3, [&] {
        w.bytes(std::string_view(reinterpret_cast<const char*>(block.parent), block.parent_size));
        w.tuple(block.token_count, [&] {
            for (std::size_t i = 0; i < block.token_count; ++i) w.integer(block.tokens[i]);
        });
        if (block.extra_keys == nullptr || block.extra_keys->empty()) {
            w.none();
        } else {
            w.tuple(block.extra_keys->size(), [&] {
                for (const Value& key : *block.extra_keys) write_value(w, key);
            });
        }
    });
    w.finish();
}

}  // namespace

void pickle_block(const BlockValue& block, std::string& out) {
    PickleWriter w(out);
    write_block(w, block);
}

void cbor_block(const BlockValue& block, std::string& out) {
    CborWriter w(out);
    write_block(w, block);
}

void pickle_string(std::string_view text, std::string& out) {
    PickleWriter w(out);
    w.text(text);
    w.finish();
}

void cbor_string(std::string_view text, std::string& out) {
    CborWriter w(out);
    w.text(text);
}

}  // namespace kvevents::detail

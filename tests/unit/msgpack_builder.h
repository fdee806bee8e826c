#pragma once

// A small fluent wrapper over msgpack-cxx's packer for hand-made payloads in tests, with raw hex
// for the bytes no conforming encoder would choose (forced integer widths, map16 for small maps,
// bad headers).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include <kvevents/hex.h>
#include <kvevents/testing/encoder.h>

namespace kvevents::test {

class MsgBuilder {
public:
    MsgBuilder() : packer_(buffer_) {}
    MsgBuilder(const MsgBuilder&) = delete;
    MsgBuilder& operator=(const MsgBuilder&) = delete;

    msgpack::packer<msgpack::sbuffer>& packer() { return packer_; }

    /// Appends bytes given as hex, verbatim.
    MsgBuilder& hex(std::string_view hex_bytes) { return raw(kvevents::from_hex(hex_bytes)); }
    /// Appends bytes verbatim (e.g. an already encoded value).
    MsgBuilder& raw(const std::string& bytes) {
        buffer_.write(bytes.data(), bytes.size());
        return *this;
    }
    MsgBuilder& array(std::uint32_t n) {
        packer_.pack_array(n);
        return *this;
    }
    MsgBuilder& map(std::uint32_t n) {
        packer_.pack_map(n);
        return *this;
    }
    MsgBuilder& str(std::string_view s) {
        packer_.pack_str(static_cast<std::uint32_t>(s.size()));
        packer_.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
        return *this;
    }
    MsgBuilder& bin(std::string_view b) {
        packer_.pack_bin(static_cast<std::uint32_t>(b.size()));
        packer_.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
        return *this;
    }
    MsgBuilder& uint(std::uint64_t v) {
        packer_.pack_uint64(v);
        return *this;
    }
    MsgBuilder& sint(std::int64_t v) {
        packer_.pack_int64(v);
        return *this;
    }
    MsgBuilder& f64(double v) {
        packer_.pack_double(v);
        return *this;
    }
    MsgBuilder& f32(float v) {
        packer_.pack_float(v);
        return *this;
    }
    MsgBuilder& nil() {
        packer_.pack_nil();
        return *this;
    }
    MsgBuilder& boolean(bool v) {
        if (v) {
            packer_.pack_true();
        } else {
            packer_.pack_false();
        }
        return *this;
    }

    std::string bytes() const { return std::string(buffer_.data(), buffer_.size()); }

private:
    msgpack::sbuffer buffer_;
    msgpack::packer<msgpack::sbuffer> packer_;
};

inline constexpr double kBatchTs = 1700000000.5;

/// `[ts, [events...], rank]` around already encoded events.
inline std::string batch_of(const std::vector<std::string>& events,
                            std::optional<std::int64_t> rank = 0) {
    MsgBuilder b;
    b.array(3).f64(kBatchTs).array(static_cast<std::uint32_t>(events.size()));
    for (const std::string& e : events) b.raw(e);
    if (rank) {
        b.sint(*rank);
    } else {
        b.nil();
    }
    return b.bytes();
}

/// A well-formed positional BlockStored `["BlockStored", [hash], nil, [1, 2], 4, nil]`.
inline std::string good_stored(std::uint64_t hash) {
    MsgBuilder b;
    b.array(6).str("BlockStored").array(1).uint(hash).nil();
    b.array(2).uint(1).uint(2).uint(4).nil();
    return b.bytes();
}

/// A well-formed map BlockRemoved `{"type": "BlockRemoved", "block_hashes": [hash], "medium":
/// "GPU"}`.
inline std::string good_removed_map(std::uint64_t hash) {
    MsgBuilder b;
    b.map(3).str("type").str("BlockRemoved").str("block_hashes").array(1).uint(hash);
    b.str("medium").str("GPU");
    return b.bytes();
}

}  // namespace kvevents::test

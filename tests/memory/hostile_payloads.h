#pragma once

// Payloads of about 1 MiB built to make a decoder allocate as much as it can: deep nesting, huge
// declared counts, long arrays under unknown keys, deep and wide extra_keys, many small events.
// Some are valid batches that must decode; the rest are junk that must only stay bounded.

#include <cstdint>
#include <string>
#include <vector>

namespace kvevents::test {

struct HostilePayload {
    std::string name;
    std::string bytes;
    /// A well-formed batch a publisher could send: it must decode in full.
    bool must_decode = false;
};

/// Every case, each close to `size` bytes.
std::vector<HostilePayload> hostile_payloads(std::size_t size = 1 << 20);

}  // namespace kvevents::test

#pragma once

// The installed RecordingHandler, under the name the tests use, and sequence ranges to compare
// its records with.

#include <cstdint>
#include <vector>

#include <kvevents/testing/recording_handler.h>

namespace kvevents::test {

using testing::RecordingHandler;

/// Sequences first..last inclusive.
inline std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
    return out;
}

}  // namespace kvevents::test

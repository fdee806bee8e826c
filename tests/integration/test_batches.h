#pragma once

#include <cstdint>
#include <utility>

#include <kvevents/events.h>

namespace kvevents::test {

/// A batch with one BlockStored of one block: the smallest realistic thing to publish.
inline EventBatch one_store(std::uint64_t hash) {
    BlockStored ev;
    ev.block_hashes = {BlockHash::from_unsigned(hash)};
    ev.token_ids = {1, 2, 3, 4};
    ev.block_size = 4;
    ev.set_medium("GPU");
    EventBatch b;
    b.ts = 1700000000.5;
    b.events.emplace_back(std::move(ev));
    return b;
}

}  // namespace kvevents::test

#include "index_shard.h"

#include <functional>
#include <thread>

namespace kvevents::detail {

namespace {

constexpr std::size_t kNotFound = ~std::size_t{0};
constexpr std::size_t kInitialCapacity = 1024;
constexpr std::uint64_t kOverflowBit = std::uint64_t{1} << 63;

std::size_t class_capacity(int c) {
    return std::size_t{4} << (2 * c);
}

int class_for(std::size_t holders) {
    int c = 0;
    while (class_capacity(c) < holders) ++c;
    return c;
}

std::uint64_t overflow_word(std::uint32_t block, int c, std::size_t count) {
    return kOverflowBit | (static_cast<std::uint64_t>(count) << 36) |
           (static_cast<std::uint64_t>(c) << 32) | block;
}

std::size_t thread_gate_slot(std::size_t slots) {
    thread_local const std::size_t hash = std::hash<std::thread::id>{}(std::this_thread::get_id());
    return hash % slots;
}

}  // namespace

// --- ReaderGate ---------------------------------------------------------------------------------

std::size_t ReaderGate::enter() {
    const std::size_t slot = thread_gate_slot(counters_.size());
    counters_[slot].value.fetch_add(1, std::memory_order_seq_cst);
    return slot;
}

void ReaderGate::leave(std::size_t slot) {
    counters_[slot].value.fetch_sub(1, std::memory_order_release);
}

bool ReaderGate::quiet() const {
    for (const Counter& c : counters_) {
        if (c.value.load(std::memory_order_seq_cst) != 0)
            return false;
    }
    return true;
}

// --- IndexShard: construction and accounting ----------------------------------------------------

IndexShard::IndexShard(const ReaderGate& gate)
    : gate_(gate), owned_table_(std::make_unique<Table>(kInitialCapacity)) {
    table_.store(owned_table_.get(), std::memory_order_seq_cst);
}

IndexShard::~IndexShard() = default;

std::size_t IndexShard::slot_capacity() const {
    std::lock_guard<std::mutex> lock(mu_);
    return owned_table_->mask + 1;
}

std::size_t IndexShard::bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t total = (owned_table_->mask + 1) * sizeof(Slot);
    for (const auto& t : retired_) total += (t->mask + 1) * sizeof(Slot);
    for (const auto& pool : pools_) total += pool.bytes();
    return total;
}

// --- readers -------------------------------------------------------------------------------------

bool IndexShard::decode(std::uint64_t word, std::vector<HolderRecord>& out) const {
    out.clear();
    if ((word & kOverflowBit) == 0) {
        if (const auto a = static_cast<HolderRecord>(word & 0xffffffff))
            out.push_back(a);
        if (const auto b = static_cast<HolderRecord>(word >> 32))
            out.push_back(b);
        return true;
    }
    const auto block = static_cast<std::uint32_t>(word & 0xffffffff);
    const int c = static_cast<int>((word >> 32) & 0xf);
    const std::size_t count = (word >> 36) & 0xffffff;
    if (c >= kClasses)
        return false;
    const std::size_t capacity = class_capacity(c);
    const std::size_t base = static_cast<std::size_t>(block) * capacity;
    const auto& pool = pools_[static_cast<std::size_t>(c)];
    // A word read while a writer works may be stale: never read past what exists.
    if (count > capacity || base + capacity > pool.capacity())
        return false;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(pool.find(base + i)->load(std::memory_order_relaxed));
    return true;
}

bool IndexShard::read(std::uint64_t key,
                      std::uint64_t mixed,
                      std::vector<HolderRecord>& out) const {
    for (;;) {
        const std::uint64_t before = seq_.load(std::memory_order_acquire);
        if ((before & 1) != 0) {
            std::this_thread::yield();
            continue;
        }
        const Table* t = table_.load(std::memory_order_seq_cst);
        bool found = false;
        bool consistent = true;
        out.clear();
        std::size_t i = mixed & t->mask;
        for (std::size_t probes = 0; probes <= t->mask; ++probes, i = (i + 1) & t->mask) {
            const std::uint64_t word = t->slots[i].word.load(std::memory_order_relaxed);
            if (word == 0)
                break;
            if (t->slots[i].key.load(std::memory_order_relaxed) != key)
                continue;
            found = true;
            consistent = decode(word, out);
            break;
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (consistent && seq_.load(std::memory_order_relaxed) == before)
            return found && !out.empty();
    }
}

// --- writers -------------------------------------------------------------------------------------

void IndexShard::begin_write() {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
}

void IndexShard::end_write() {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

std::size_t IndexShard::find_slot(std::uint64_t key, std::uint64_t mixed) const {
    const Table& t = *owned_table_;
    for (std::size_t i = mixed & t.mask;; i = (i + 1) & t.mask) {
        if (t.slots[i].word.load(std::memory_order_relaxed) == 0)
            return kNotFound;
        if (t.slots[i].key.load(std::memory_order_relaxed) == key)
            return i;
    }
}

void IndexShard::load_holders(std::uint64_t word, std::vector<HolderRecord>& out) const {
    decode(word, out);
}

void IndexShard::release_block(std::uint64_t word) {
    if ((word & kOverflowBit) != 0) {
        const auto c = static_cast<std::size_t>((word >> 32) & 0xf);
        free_blocks_[c].push_back(static_cast<std::uint32_t>(word & 0xffffffff));
    }
}

// Writes `holders` where the slot's new word can find them. The caller is inside a write.
std::uint64_t IndexShard::store_holders(std::uint64_t old_word,
                                        const std::vector<HolderRecord>& holders) {
    if (holders.size() <= 2) {
        release_block(old_word);
        return holders[0] | (holders.size() == 2 ? std::uint64_t{holders[1]} << 32 : 0);
    }
    const int wanted = class_for(holders.size());
    std::uint32_t block = 0;
    int c = wanted;
    const bool had_block = (old_word & kOverflowBit) != 0;
    const int old_class = static_cast<int>((old_word >> 32) & 0xf);
    // Keep the block while it fits and is at most one class too large (no churn at a boundary).
    if (had_block && old_class >= wanted && old_class <= wanted + 1) {
        c = old_class;
        block = static_cast<std::uint32_t>(old_word & 0xffffffff);
    } else {
        release_block(old_word);
        auto& free_list = free_blocks_[static_cast<std::size_t>(c)];
        if (!free_list.empty()) {
            block = free_list.back();
            free_list.pop_back();
        } else {
            block = blocks_made_[static_cast<std::size_t>(c)]++;
            pools_[static_cast<std::size_t>(c)].reserve((std::size_t{block} + 1) *
                                                        class_capacity(c));
        }
    }
    const std::size_t base = std::size_t{block} * class_capacity(c);
    auto& pool = pools_[static_cast<std::size_t>(c)];
    for (std::size_t i = 0; i < holders.size(); ++i)
        pool.find(base + i)->store(holders[i], std::memory_order_relaxed);
    return overflow_word(block, c, holders.size());
}

void IndexShard::rewrite(std::size_t index, std::uint64_t old_word) {
    begin_write();
    if (scratch_.empty()) {
        release_block(old_word);
        erase_at(index);
        used_.fetch_sub(1, std::memory_order_relaxed);
    } else {
        owned_table_->slots[index].word.store(store_holders(old_word, scratch_),
                                              std::memory_order_relaxed);
    }
    end_write();
}

void IndexShard::erase_at(std::size_t index) {
    Table& t = *owned_table_;
    std::size_t hole = index;
    for (std::size_t j = (index + 1) & t.mask;; j = (j + 1) & t.mask) {
        const std::uint64_t word = t.slots[j].word.load(std::memory_order_relaxed);
        if (word == 0)
            break;
        const std::uint64_t key = t.slots[j].key.load(std::memory_order_relaxed);
        const std::size_t home = mix_key(key) & t.mask;
        // The entry may move back into the hole unless its home lies after the hole, up to j.
        const bool home_between =
            hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!home_between) {
            t.slots[hole].key.store(key, std::memory_order_relaxed);
            t.slots[hole].word.store(word, std::memory_order_relaxed);
            hole = j;
        }
    }
    t.slots[hole].word.store(0, std::memory_order_relaxed);
    t.slots[hole].key.store(0, std::memory_order_relaxed);
}

void IndexShard::insert_new(std::uint64_t key, std::uint64_t mixed, std::uint64_t word) {
    if ((used_.load(std::memory_order_relaxed) + 1) * 4 > (owned_table_->mask + 1) * 3)
        grow();
    Table& t = *owned_table_;
    std::size_t i = mixed & t.mask;
    while (t.slots[i].word.load(std::memory_order_relaxed) != 0) i = (i + 1) & t.mask;
    begin_write();
    t.slots[i].key.store(key, std::memory_order_relaxed);
    t.slots[i].word.store(word, std::memory_order_relaxed);
    end_write();
    used_.fetch_add(1, std::memory_order_relaxed);
}

void IndexShard::grow() {
    // Built aside while readers go on with the current table; only the switch is a write.
    auto bigger = std::make_unique<Table>((owned_table_->mask + 1) * 2);
    const Table& old = *owned_table_;
    for (std::size_t i = 0; i <= old.mask; ++i) {
        const std::uint64_t word = old.slots[i].word.load(std::memory_order_relaxed);
        if (word == 0)
            continue;
        const std::uint64_t key = old.slots[i].key.load(std::memory_order_relaxed);
        std::size_t j = mix_key(key) & bigger->mask;
        while (bigger->slots[j].word.load(std::memory_order_relaxed) != 0)
            j = (j + 1) & bigger->mask;
        bigger->slots[j].key.store(key, std::memory_order_relaxed);
        bigger->slots[j].word.store(word, std::memory_order_relaxed);
    }
    begin_write();
    table_.store(bigger.get(), std::memory_order_seq_cst);
    end_write();
    retired_.push_back(std::move(owned_table_));
    owned_table_ = std::move(bigger);
    sweep_cursor_ = 0;
}

void IndexShard::free_retired() {
    if (!retired_.empty() && gate_.quiet())
        retired_.clear();
}

IndexShard::Change IndexShard::add(std::uint64_t key,
                                   std::uint64_t mixed,
                                   std::uint32_t id,
                                   std::uint8_t tiers) {
    std::lock_guard<std::mutex> lock(mu_);
    free_retired();
    const std::size_t index = find_slot(key, mixed);
    if (index == kNotFound) {
        insert_new(key, mixed, make_record(id, tiers));
        return Change::kRecordAdded;
    }
    const std::uint64_t word = owned_table_->slots[index].word.load(std::memory_order_relaxed);
    load_holders(word, scratch_);
    for (HolderRecord& r : scratch_) {
        if (record_id(r) != id)
            continue;
        if ((record_tiers(r) | tiers) == record_tiers(r))
            return Change::kNone;
        r |= tiers;
        rewrite(index, word);
        return Change::kTiersChanged;
    }
    scratch_.push_back(make_record(id, tiers));
    rewrite(index, word);
    return Change::kRecordAdded;
}

IndexShard::Change IndexShard::remove(std::uint64_t key,
                                      std::uint64_t mixed,
                                      std::uint32_t id,
                                      std::uint8_t tiers) {
    std::lock_guard<std::mutex> lock(mu_);
    free_retired();
    const std::size_t index = find_slot(key, mixed);
    if (index == kNotFound)
        return Change::kNone;
    const std::uint64_t word = owned_table_->slots[index].word.load(std::memory_order_relaxed);
    load_holders(word, scratch_);
    for (std::size_t i = 0; i < scratch_.size(); ++i) {
        HolderRecord& r = scratch_[i];
        if (record_id(r) != id)
            continue;
        const auto left = static_cast<std::uint8_t>(record_tiers(r) & ~tiers);
        if (left == record_tiers(r))
            return Change::kNone;
        if (left != 0) {
            r = make_record(id, left);
            rewrite(index, word);
            return Change::kTiersChanged;
        }
        r = scratch_.back();
        scratch_.pop_back();
        rewrite(index, word);
        return Change::kRecordRemoved;
    }
    return Change::kNone;
}

}  // namespace kvevents::detail

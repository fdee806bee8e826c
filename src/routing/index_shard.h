#pragma once

// One shard of the prefix index: which publishers hold each block key, on which tiers.
//
// Writers take the shard's mutex. Readers take no lock: each shard is a sequence lock, so a
// reader copies a key's holders and retries if a writer changed the shard meanwhile. Everything
// a reader can reach stays allocated while it reads: holder blocks are recycled, never freed,
// and a table replaced by a larger one is freed only when no query is running (ReaderGate).
// Every field a reader loads is an atomic, read relaxed, so that racing reads are defined.
//
// Slots are open-addressed with linear probing and backward-shift deletion. A slot's word holds
// up to two holder records inline; more go to a holder block of the smallest size class that
// fits (4, 16, 64, ... records).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "stable_array.h"

namespace kvevents::detail {

/// A publisher holding a block: its id (23 bits) and the tiers it holds the block on (8 bits,
/// one per tier). Never 0 while it holds the block on some tier.
using HolderRecord = std::uint32_t;
constexpr std::uint32_t kMaxPublisherIds = 1U << 23;
inline HolderRecord make_record(std::uint32_t id, std::uint8_t tiers) {
    return (id << 8) | tiers;
}
inline std::uint32_t record_id(HolderRecord r) {
    return r >> 8;
}
inline std::uint8_t record_tiers(HolderRecord r) {
    return static_cast<std::uint8_t>(r & 0xff);
}

/// Spreads keys that need not be random (small integers from some publishers) over slots.
inline std::uint64_t mix_key(std::uint64_t key) {
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    return key ^ (key >> 31);
}

/// Counts the queries running, so that memory a query may still read is freed only once none
/// does. One atomic increment and decrement per query, spread over padded counters.
class ReaderGate {
public:
    std::size_t enter();
    void leave(std::size_t slot);
    /// True when no query was running at the moment of the call.
    bool quiet() const;

private:
    struct alignas(64) Counter {
        std::atomic<std::uint64_t> value{0};
    };
    std::array<Counter, 32> counters_;
};

class IndexShard {
public:
    explicit IndexShard(const ReaderGate& gate);
    ~IndexShard();
    IndexShard(const IndexShard&) = delete;
    IndexShard& operator=(const IndexShard&) = delete;

    /// What a write did to the holder records: the index counts records per publisher.
    enum class Change : std::uint8_t { kNone, kRecordAdded, kRecordRemoved, kTiersChanged };

    // Writers: any thread; serialised by the shard's mutex.
    Change add(std::uint64_t key, std::uint64_t mixed, std::uint32_t id, std::uint8_t tiers);
    Change remove(std::uint64_t key, std::uint64_t mixed, std::uint32_t id, std::uint8_t tiers);
    /// Drops the records of publishers `is_dead` names from up to `max_slots` slots, going on
    /// from where the last sweep stopped; calls on_removed(id) per record dropped.
    template <class IsDead, class OnRemoved>
    void sweep(std::size_t max_slots, IsDead&& is_dead, OnRemoved&& on_removed);

    // Readers: any thread, no lock.
    /// Copies the holders of `key` into `out` (replacing it); false when none holds it.
    bool read(std::uint64_t key, std::uint64_t mixed, std::vector<HolderRecord>& out) const;

    std::size_t keys() const { return used_.load(std::memory_order_relaxed); }
    /// Slots of the current table.
    std::size_t slot_capacity() const;
    /// Bytes of slot tables and holder blocks held.
    std::size_t bytes() const;

private:
    struct Slot {
        std::atomic<std::uint64_t> key{0};
        std::atomic<std::uint64_t> word{0};  // 0: empty
    };
    struct Table {
        explicit Table(std::size_t capacity) : mask(capacity - 1), slots(new Slot[capacity]()) {}
        const std::size_t mask;
        const std::unique_ptr<Slot[]> slots;
    };
    static constexpr int kClasses = 12;  // holder blocks of 4 << 2c records, up to 2^23

    // Writer side; the caller holds mu_.
    void begin_write();
    void end_write();
    std::size_t find_slot(std::uint64_t key, std::uint64_t mixed) const;  // npos: absent
    void load_holders(std::uint64_t word, std::vector<HolderRecord>& out) const;
    std::uint64_t store_holders(std::uint64_t old_word, const std::vector<HolderRecord>& holders);
    void release_block(std::uint64_t word);
    void insert_new(std::uint64_t key, std::uint64_t mixed, std::uint64_t word);
    void erase_at(std::size_t index);
    void grow();
    void free_retired();
    /// Replaces slot `index`'s holders (whose word was `old_word`) with scratch_, erasing the
    /// slot when scratch_ is empty.
    void rewrite(std::size_t index, std::uint64_t old_word);

    // Reader side.
    bool decode(std::uint64_t word, std::vector<HolderRecord>& out) const;

    const ReaderGate& gate_;
    mutable std::mutex mu_;
    std::atomic<std::uint64_t> seq_{0};
    std::atomic<Table*> table_;
    std::unique_ptr<Table> owned_table_;
    std::vector<std::unique_ptr<Table>> retired_;
    std::atomic<std::size_t> used_{0};
    std::array<StableArray<std::atomic<HolderRecord>>, kClasses> pools_;
    std::array<std::vector<std::uint32_t>, kClasses> free_blocks_;
    std::array<std::uint32_t, kClasses> blocks_made_{};
    std::size_t sweep_cursor_ = 0;
    std::vector<HolderRecord> scratch_;  // writer only
};

template <class IsDead, class OnRemoved>
void IndexShard::sweep(std::size_t max_slots, IsDead&& is_dead, OnRemoved&& on_removed) {
    std::lock_guard<std::mutex> lock(mu_);
    const Table& t = *owned_table_;
    // Counts slots passed, not looked at: an emptied slot takes in a later entry of its run and
    // is looked at again. Each second look follows a removal, so the loop ends.
    for (std::size_t passed = 0; passed < max_slots;) {
        if (sweep_cursor_ > t.mask)
            sweep_cursor_ = 0;
        const std::size_t i = sweep_cursor_;
        const std::uint64_t word = t.slots[i].word.load(std::memory_order_relaxed);
        std::size_t kept = 0;
        bool changed = false;
        if (word != 0) {
            load_holders(word, scratch_);
            for (const HolderRecord r : scratch_) {
                if (is_dead(record_id(r)))
                    on_removed(record_id(r));
                else
                    scratch_[kept++] = r;
            }
            changed = kept != scratch_.size();
        }
        if (changed) {
            scratch_.resize(kept);
            rewrite(i, word);
        }
        if (!changed || kept > 0) {
            ++sweep_cursor_;
            ++passed;
        }
    }
    free_retired();
}

}  // namespace kvevents::detail

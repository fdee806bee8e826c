#pragma once

// The baseline kvevents-index-bench compares PrefixIndex with: the index a gateway writes first,
// std::unordered_map<std::uint64_t, small vector of holders> under one std::shared_mutex, with
// the same answer per query (leading blocks per publisher, cumulative per tier).

#include <array>
#include <cstdint>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace kvevents::bench {

class SharedMutexIndex {
public:
    struct Match {
        std::uint32_t publisher;
        std::array<std::uint32_t, 8> blocks;
    };

    void store(std::uint32_t publisher, const std::vector<std::uint64_t>& keys, unsigned tier);
    void remove(std::uint32_t publisher, const std::vector<std::uint64_t>& keys, unsigned tier);
    /// Fills `out`; returns the blocks probed.
    std::size_t match(const std::vector<std::uint64_t>& keys, std::vector<Match>& out) const;
    std::size_t entries() const;

private:
    struct Holder {
        std::uint32_t publisher;
        std::uint8_t tiers;
    };
    // Two holders inline, more on the heap: most blocks have one or two.
    class Holders {
    public:
        Holders() = default;
        Holders(const Holders&) = delete;
        Holders& operator=(const Holders&) = delete;
        Holders(Holders&& other) noexcept;
        ~Holders();
        std::uint32_t size() const { return size_; }
        Holder* data() { return capacity_ <= 2 ? inline_ : heap_; }
        const Holder* data() const { return capacity_ <= 2 ? inline_ : heap_; }
        void push_back(Holder h);
        void erase_at(std::uint32_t i);

    private:
        std::uint32_t size_ = 0;
        std::uint32_t capacity_ = 2;
        union {
            Holder inline_[2];
            Holder* heap_;
        };
    };

    mutable std::shared_mutex mu_;
    std::unordered_map<std::uint64_t, Holders> map_;
};

}  // namespace kvevents::bench

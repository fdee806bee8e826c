#pragma once

// An array that only grows and never moves an element: pages of doubling size, found through a
// fixed directory. Readers without a lock may index it while one writer grows it, because
// nothing they can reach is ever freed or moved before the array is destroyed.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace kvevents::detail {

template <class T, std::size_t kFirstPageSize = 256>
class StableArray {
    static_assert((kFirstPageSize & (kFirstPageSize - 1)) == 0, "a power of two");

public:
    StableArray() = default;
    StableArray(const StableArray&) = delete;
    StableArray& operator=(const StableArray&) = delete;
    ~StableArray() {
        for (auto& page : pages_) delete[] page.load(std::memory_order_relaxed);
    }

    /// Elements that may be indexed; grows only.
    std::size_t capacity() const { return capacity_.load(std::memory_order_acquire); }

    /// Makes at least `n` elements (value-initialised) indexable. One writer at a time.
    void reserve(std::size_t n) {
        std::size_t cap = capacity_.load(std::memory_order_relaxed);
        while (cap < n) {
            const std::size_t page = page_count_;
            const std::size_t size = kFirstPageSize << page;
            pages_.at(page).store(new T[size](), std::memory_order_release);
            ++page_count_;
            cap += size;
            capacity_.store(cap, std::memory_order_release);
        }
    }

    /// Element i, for i < capacity(); null when i is beyond it (as a reader racing a writer
    /// may ask for).
    T* find(std::size_t i) const {
        if (i >= capacity())
            return nullptr;
        const std::size_t q = i / kFirstPageSize + 1;
        const auto page = static_cast<std::size_t>(63 - __builtin_clzll(q));
        T* base = pages_[page].load(std::memory_order_acquire);
        return base + (i - kFirstPageSize * ((std::size_t{1} << page) - 1));
    }
    T& operator[](std::size_t i) const { return *find(i); }

    /// Bytes held.
    std::size_t bytes() const { return capacity() * sizeof(T); }

private:
    std::array<std::atomic<T*>, 48> pages_{};
    std::size_t page_count_ = 0;  // writer only
    std::atomic<std::size_t> capacity_{0};
};

}  // namespace kvevents::detail

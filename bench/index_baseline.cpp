#include "index_baseline.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace kvevents::bench {

SharedMutexIndex::Holders::Holders(Holders&& other) noexcept
    : size_(other.size_), capacity_(other.capacity_) {
    if (capacity_ <= 2)
        std::memcpy(inline_, other.inline_, sizeof inline_);
    else
        heap_ = other.heap_;
    other.size_ = 0;
    other.capacity_ = 2;
}

SharedMutexIndex::Holders::~Holders() {
    if (capacity_ > 2)
        delete[] heap_;
}

void SharedMutexIndex::Holders::push_back(Holder h) {
    if (size_ == capacity_) {
        auto* grown = new Holder[capacity_ * 2];
        std::copy(data(), data() + size_, grown);
        if (capacity_ > 2)
            delete[] heap_;
        heap_ = grown;
        capacity_ *= 2;
    }
    data()[size_++] = h;
}

void SharedMutexIndex::Holders::erase_at(std::uint32_t i) {
    data()[i] = data()[size_ - 1];
    --size_;
}

void SharedMutexIndex::store(std::uint32_t publisher,
                             const std::vector<std::uint64_t>& keys,
                             unsigned tier) {
    const auto bit = static_cast<std::uint8_t>(1U << tier);
    std::unique_lock<std::shared_mutex> lock(mu_);
    for (const std::uint64_t key : keys) {
        Holders& h = map_[key];
        bool found = false;
        for (std::uint32_t i = 0; i < h.size(); ++i) {
            if (h.data()[i].publisher == publisher) {
                h.data()[i].tiers |= bit;
                found = true;
                break;
            }
        }
        if (!found)
            h.push_back(Holder{publisher, bit});
    }
}

void SharedMutexIndex::remove(std::uint32_t publisher,
                              const std::vector<std::uint64_t>& keys,
                              unsigned tier) {
    const auto bit = static_cast<std::uint8_t>(1U << tier);
    std::unique_lock<std::shared_mutex> lock(mu_);
    for (const std::uint64_t key : keys) {
        const auto it = map_.find(key);
        if (it == map_.end())
            continue;
        Holders& h = it->second;
        for (std::uint32_t i = 0; i < h.size(); ++i) {
            if (h.data()[i].publisher != publisher)
                continue;
            h.data()[i].tiers = static_cast<std::uint8_t>(h.data()[i].tiers & ~bit);
            if (h.data()[i].tiers == 0)
                h.erase_at(i);
            break;
        }
        if (h.size() == 0)
            map_.erase(it);
    }
}

std::size_t SharedMutexIndex::match(const std::vector<std::uint64_t>& keys,
                                    std::vector<Match>& out) const {
    out.clear();
    std::vector<unsigned> level;
    std::vector<bool> holding;
    std::size_t alive = 0;
    std::size_t probed = 0;
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (std::size_t b = 0; b < keys.size(); ++b) {
        ++probed;
        const auto it = map_.find(keys[b]);
        const Holder* holders = it == map_.end() ? nullptr : it->second.data();
        const std::uint32_t n = it == map_.end() ? 0 : it->second.size();
        if (b == 0) {
            for (std::uint32_t i = 0; i < n; ++i) {
                out.push_back(Match{holders[i].publisher, {}});
                level.push_back(static_cast<unsigned>(__builtin_ctz(holders[i].tiers)));
                holding.push_back(true);
            }
            alive = out.size();
        } else {
            for (std::size_t c = 0; c < out.size(); ++c) {
                if (!holding[c])
                    continue;
                const Holder* h = std::find_if(holders, holders + n, [&](const Holder& x) {
                    return x.publisher == out[c].publisher;
                });
                const unsigned next =
                    h == holders + n
                        ? 8U
                        : std::max(level[c], static_cast<unsigned>(__builtin_ctz(h->tiers)));
                for (unsigned t = level[c]; t < next; ++t)
                    out[c].blocks[t] = static_cast<std::uint32_t>(b);
                level[c] = next;
                if (next == 8U) {
                    holding[c] = false;
                    --alive;
                }
            }
        }
        if (alive == 0)
            break;
    }
    for (std::size_t c = 0; c < out.size(); ++c) {
        for (unsigned t = level[c]; holding[c] && t < 8; ++t)
            out[c].blocks[t] = static_cast<std::uint32_t>(keys.size());
    }
    return probed;
}

std::size_t SharedMutexIndex::entries() const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    std::size_t n = 0;
    for (const auto& entry : map_) n += entry.second.size();
    return n;
}

}  // namespace kvevents::bench

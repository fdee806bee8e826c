#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>

#include <kvevents/prefix_index.h>

#include "index_shard.h"
#include "publisher_key.h"
#include "stable_array.h"

namespace kvevents {

namespace {

using detail::HolderRecord;
using detail::IndexShard;
using detail::mix_key;
using detail::record_id;
using detail::record_tiers;

constexpr std::size_t kSweepSlotsPerUpdate = 64;
constexpr std::size_t kKnownTiers = 4;

// A publisher id's life: the low bit says it is in use, the rest counts its uses, so a query
// can tell that an id it read was given to another publisher meanwhile.
struct IdState {
    std::atomic<std::uint64_t> life{0};
    std::atomic<std::int64_t> entries{0};
};

bool alive(std::uint64_t life) {
    return (life & 1) != 0;
}

int lowest_tier(std::uint8_t tiers) {
    return __builtin_ctz(tiers);
}

// One publisher followed through a query.
struct Candidate {
    std::uint32_t id;
    std::uint64_t life;
    std::size_t level;  // the lowest tier up to which every block so far is held
    std::size_t last_seen;
    bool holding;
    std::array<std::uint32_t, kMaxTiers> blocks;
};

// Reused by each thread's queries: no allocation per query once warm.
struct QueryScratch {
    std::vector<HolderRecord> holders;
    std::vector<Candidate> candidates;
    std::vector<std::uint32_t> candidate_of_id;
    std::vector<std::uint32_t> stamp_of_id;
    std::uint32_t stamp = 0;

    void begin(std::size_t ids) {
        candidates.clear();
        if (stamp_of_id.size() < ids) {
            stamp_of_id.resize(ids, 0);
            candidate_of_id.resize(ids, 0);
        }
        if (++stamp == 0) {  // wrapped: old stamps could read as current
            std::fill(stamp_of_id.begin(), stamp_of_id.end(), 0);
            stamp = 1;
        }
    }
};

}  // namespace

struct PrefixIndex::Impl {
    struct Entry {
        std::uint32_t id;
        bool stale = false;
    };
    using Registry = std::map<std::pair<std::string, int>, Entry, detail::PublisherOrder>;

    explicit Impl(Options options) {
        std::size_t n = 1;
        int bits = 0;
        while (n < std::max<std::size_t>(options.shards, 1)) {
            n <<= 1;
            ++bits;
        }
        shard_shift = 64 - bits;
        for (std::size_t i = 0; i < n; ++i) shards.push_back(std::make_unique<IndexShard>(gate));
    }

    IndexShard& shard_of(std::uint64_t mixed) const {
        return *shards[shard_shift == 64 ? 0 : static_cast<std::size_t>(mixed >> shard_shift)];
    }

    // --- publisher ids (registry_mu held exclusively) ---

    std::uint32_t allocate_id() {
        // Ids of gone publishers come back once the sweeps have taken all their entries.
        for (std::size_t i = 0; i < dead_ids.size();) {
            if (ids[dead_ids[i]].entries.load(std::memory_order_relaxed) == 0) {
                free_ids.push_back(dead_ids[i]);
                dead_ids[i] = dead_ids.back();
                dead_ids.pop_back();
            } else {
                ++i;
            }
        }
        std::uint32_t id = 0;
        if (!free_ids.empty()) {
            id = free_ids.back();
            free_ids.pop_back();
        } else {
            if (next_id >= detail::kMaxPublisherIds)
                throw std::length_error("the prefix index follows at most 2^23 publishers");
            id = next_id++;
            ids.reserve(next_id);
            names.resize(next_id);
        }
        IdState& s = ids[id];
        s.life.store((s.life.load(std::memory_order_relaxed) | 1) + 2, std::memory_order_release);
        return id;
    }

    void retire_id(std::uint32_t id) {
        IdState& s = ids[id];
        s.life.store(s.life.load(std::memory_order_relaxed) & ~std::uint64_t{1},
                     std::memory_order_release);
        dead_entries.fetch_add(s.entries.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
        dead_ids.push_back(id);
        names[id] = nullptr;
    }

    Registry::iterator create(const std::string& pod_key, int rank) {
        auto it = registry.emplace(std::make_pair(pod_key, rank), Entry{allocate_id()}).first;
        names[it->second.id] = &it->first;
        return it;
    }

    // The publisher's current id, made on first use; returns with registry_mu held shared.
    std::uint32_t id_for(const std::string& pod_key,
                         int rank,
                         std::shared_lock<std::shared_mutex>& shared) {
        shared = std::shared_lock<std::shared_mutex>(registry_mu);
        auto it = registry.find(detail::PublisherKey{pod_key, rank});
        if (it != registry.end())
            return it->second.id;
        shared.unlock();
        {
            std::unique_lock<std::shared_mutex> exclusive(registry_mu);
            if (registry.find(detail::PublisherKey{pod_key, rank}) == registry.end())
                create(pod_key, rank);
        }
        shared.lock();
        it = registry.find(detail::PublisherKey{pod_key, rank});
        if (it == registry.end())  // removed in between: the update is for a gone publisher
            return detail::kMaxPublisherIds;
        return it->second.id;
    }

    // --- sweeping (registry_mu held shared, so no id changes its life meanwhile) ---

    void sweep_shard(IndexShard& shard, std::size_t slots) {
        shard.sweep(
            slots,
            [this](std::uint32_t id) {
                return !alive(ids[id].life.load(std::memory_order_relaxed));
            },
            [this](std::uint32_t id) {
                ids[id].entries.fetch_sub(1, std::memory_order_relaxed);
                dead_entries.fetch_sub(1, std::memory_order_relaxed);
            });
    }

    void sweep_a_little() {
        if (dead_entries.load(std::memory_order_relaxed) <= 0)
            return;
        const std::size_t next = sweep_turn.fetch_add(1, std::memory_order_relaxed);
        sweep_shard(*shards[next % shards.size()], kSweepSlotsPerUpdate);
    }

    template <class Apply>
    void update(const std::string& pod_key,
                int rank,
                const std::vector<std::uint64_t>& keys,
                std::size_t tier,
                Apply&& apply) {
        if (tier >= kMaxTiers)
            throw std::invalid_argument("tier " + std::to_string(tier) + " is not below " +
                                        std::to_string(kMaxTiers));
        const auto bit = static_cast<std::uint8_t>(1U << tier);
        std::shared_lock<std::shared_mutex> shared;
        const std::uint32_t id = id_for(pod_key, rank, shared);
        if (id == detail::kMaxPublisherIds)
            return;
        std::int64_t delta = 0;
        for (const std::uint64_t key : keys) {
            const std::uint64_t mixed = mix_key(key);
            delta += apply(shard_of(mixed), key, mixed, id, bit);
        }
        ids[id].entries.fetch_add(delta, std::memory_order_relaxed);
        sweep_a_little();
    }

    detail::ReaderGate gate;
    std::vector<std::unique_ptr<IndexShard>> shards;
    int shard_shift = 64;

    mutable std::shared_mutex registry_mu;
    Registry registry;                                      // guarded by registry_mu
    std::vector<const std::pair<std::string, int>*> names;  // by id; guarded by registry_mu
    detail::StableArray<IdState> ids;                       // grown under registry_mu
    std::uint32_t next_id = 0;                              // guarded by registry_mu
    std::vector<std::uint32_t> free_ids;                    // guarded by registry_mu
    std::vector<std::uint32_t> dead_ids;                    // guarded by registry_mu
    std::atomic<std::int64_t> dead_entries{0};
    std::atomic<std::size_t> sweep_turn{0};

    mutable std::mutex tiers_mu;
    std::array<std::string, kMaxTiers - kKnownTiers> other_tiers;  // guarded by tiers_mu
};

// --- PodMatch and scoring
// -------------------------------------------------------------------------

std::size_t PodMatch::longest_gpu_blocks() const {
    std::size_t best = 0;
    for (const PublisherMatch& r : ranks) best = std::max(best, r.gpu_blocks());
    return best;
}

std::size_t PodMatch::longest_any_tier_blocks() const {
    std::size_t best = 0;
    for (const PublisherMatch& r : ranks) best = std::max(best, r.any_tier_blocks());
    return best;
}

std::vector<ScoredPublisher> top_k(const PrefixMatch& match,
                                   std::size_t k,
                                   const TierWeights& weights) {
    std::vector<ScoredPublisher> scored;
    for (const PodMatch& pod : match.pods) {
        for (const PublisherMatch& r : pod.ranks) {
            ScoredPublisher s;
            s.pod_key = r.pod_key;
            s.data_parallel_rank = r.data_parallel_rank;
            s.gpu_blocks = r.gpu_blocks();
            s.any_tier_blocks = r.any_tier_blocks();
            s.stale = r.stale;
            std::uint32_t counted = 0;
            for (std::size_t t = 0; t < kMaxTiers; ++t) {
                s.score += weights.weight[t] * static_cast<double>(r.blocks[t] - counted);
                counted = r.blocks[t];
            }
            if (r.stale)
                s.score *= weights.stale_factor;
            scored.push_back(std::move(s));
        }
    }
    const auto better = [](const ScoredPublisher& a, const ScoredPublisher& b) {
        if (a.score != b.score)
            return a.score > b.score;
        if (a.pod_key != b.pod_key)
            return a.pod_key < b.pod_key;
        return a.data_parallel_rank < b.data_parallel_rank;
    };
    const std::size_t n = std::min(k, scored.size());
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end(),
                      better);
    scored.resize(n);
    return scored;
}

// --- PrefixIndex
// ----------------------------------------------------------------------------------

PrefixIndex::PrefixIndex() : PrefixIndex(Options{}) {}

PrefixIndex::PrefixIndex(Options options) : impl_(std::make_unique<Impl>(options)) {}

PrefixIndex::~PrefixIndex() = default;

void PrefixIndex::store(const std::string& pod_key,
                        int data_parallel_rank,
                        const std::vector<std::uint64_t>& keys,
                        std::size_t tier) {
    impl_->update(pod_key, data_parallel_rank, keys, tier,
                  [](IndexShard& shard, std::uint64_t key, std::uint64_t mixed, std::uint32_t id,
                     std::uint8_t bit) -> std::int64_t {
                      return shard.add(key, mixed, id, bit) == IndexShard::Change::kRecordAdded ? 1
                                                                                                : 0;
                  });
}

void PrefixIndex::remove(const std::string& pod_key,
                         int data_parallel_rank,
                         const std::vector<std::uint64_t>& keys,
                         std::size_t tier) {
    impl_->update(
        pod_key, data_parallel_rank, keys, tier,
        [](IndexShard& shard, std::uint64_t key, std::uint64_t mixed, std::uint32_t id,
           std::uint8_t bit) -> std::int64_t {
            return shard.remove(key, mixed, id, bit) == IndexShard::Change::kRecordRemoved ? -1 : 0;
        });
}

void PrefixIndex::clear(const std::string& pod_key, int data_parallel_rank) {
    std::unique_lock<std::shared_mutex> lock(impl_->registry_mu);
    auto it = impl_->registry.find(detail::PublisherKey{pod_key, data_parallel_rank});
    if (it == impl_->registry.end()) {
        impl_->create(pod_key, data_parallel_rank);
        return;
    }
    impl_->retire_id(it->second.id);
    it->second.id = impl_->allocate_id();
    it->second.stale = false;
    impl_->names[it->second.id] = &it->first;
}

void PrefixIndex::mark_stale(const std::string& pod_key, int data_parallel_rank) {
    std::unique_lock<std::shared_mutex> lock(impl_->registry_mu);
    auto it = impl_->registry.find(detail::PublisherKey{pod_key, data_parallel_rank});
    if (it == impl_->registry.end())
        it = impl_->create(pod_key, data_parallel_rank);
    it->second.stale = true;
}

void PrefixIndex::remove_publisher(const std::string& pod_key, int data_parallel_rank) {
    std::unique_lock<std::shared_mutex> lock(impl_->registry_mu);
    auto it = impl_->registry.find(detail::PublisherKey{pod_key, data_parallel_rank});
    if (it == impl_->registry.end())
        return;
    impl_->retire_id(it->second.id);
    impl_->registry.erase(it);
}

void PrefixIndex::sweep() {
    std::shared_lock<std::shared_mutex> lock(impl_->registry_mu);
    for (auto& shard : impl_->shards) impl_->sweep_shard(*shard, shard->slot_capacity() + 1);
}

std::size_t PrefixIndex::tier_for(Medium medium, std::string_view medium_name) {
    switch (medium) {
        case Medium::kUnset:
        case Medium::kGpu:
            return kGpuTier;
        case Medium::kCpu:
        case Medium::kCpuPinned:
            return kCpuTier;
        case Medium::kDisk:
        case Medium::kFs:
            return kDiskTier;
        case Medium::kExternal:
        case Medium::kObj:
        case Medium::kStorage:
        case Medium::kSharedStorage:
            return kExternalTier;
        case Medium::kOther:
            break;
    }
    // Some connectors write the known names in lower case ("cpu").
    std::string upper(medium_name);
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (const Medium known = medium_from_name(upper); known != Medium::kOther)
        return tier_for(known, upper);
    std::lock_guard<std::mutex> lock(impl_->tiers_mu);
    auto& names = impl_->other_tiers;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == medium_name)
            return kKnownTiers + i;
        if (names[i].empty()) {
            names[i] = std::string(medium_name);
            return kKnownTiers + i;
        }
    }
    return kMaxTiers - 1;
}

std::string PrefixIndex::tier_name(std::size_t tier) const {
    static const char* const kKnown[kKnownTiers] = {"GPU", "CPU", "DISK", "EXTERNAL"};
    if (tier < kKnownTiers)
        return kKnown[tier];
    if (tier >= kMaxTiers)
        return std::string();
    std::lock_guard<std::mutex> lock(impl_->tiers_mu);
    return impl_->other_tiers[tier - kKnownTiers];
}

PrefixMatch PrefixIndex::match(const std::vector<std::uint64_t>& keys) const {
    thread_local QueryScratch scratch;
    PrefixMatch result;
    if (keys.empty())
        return result;
    const Impl& impl = *impl_;
    const std::size_t gate_slot = impl_->gate.enter();
    scratch.begin(impl.ids.capacity());
    std::size_t holding = 0;
    std::size_t b = 0;
    for (; b < keys.size(); ++b) {
        const std::uint64_t mixed = mix_key(keys[b]);
        ++result.blocks_probed;
        if (!impl.shard_of(mixed).read(keys[b], mixed, scratch.holders))
            scratch.holders.clear();
        if (b == 0) {
            for (const HolderRecord r : scratch.holders) {
                const std::uint32_t id = record_id(r);
                const IdState* state = impl.ids.find(id);
                if (state == nullptr || id >= scratch.stamp_of_id.size())
                    continue;
                const std::uint64_t life = state->life.load(std::memory_order_acquire);
                if (!alive(life))
                    continue;
                scratch.stamp_of_id[id] = scratch.stamp;
                scratch.candidate_of_id[id] = static_cast<std::uint32_t>(scratch.candidates.size());
                scratch.candidates.push_back(Candidate{
                    id, life, static_cast<std::size_t>(lowest_tier(record_tiers(r))), 0, true, {}});
            }
            holding = scratch.candidates.size();
        } else {
            std::size_t seen = 0;
            for (const HolderRecord r : scratch.holders) {
                const std::uint32_t id = record_id(r);
                if (id >= scratch.stamp_of_id.size() || scratch.stamp_of_id[id] != scratch.stamp)
                    continue;
                Candidate& c = scratch.candidates[scratch.candidate_of_id[id]];
                if (!c.holding)
                    continue;
                const std::size_t level =
                    std::max(c.level, static_cast<std::size_t>(lowest_tier(record_tiers(r))));
                for (std::size_t t = c.level; t < level; ++t)
                    c.blocks[t] = static_cast<std::uint32_t>(b);
                c.level = level;
                c.last_seen = b;
                ++seen;
            }
            if (seen < holding) {
                for (Candidate& c : scratch.candidates) {
                    if (!c.holding || c.last_seen == b)
                        continue;
                    for (std::size_t t = c.level; t < kMaxTiers; ++t)
                        c.blocks[t] = static_cast<std::uint32_t>(b);
                    c.holding = false;
                    --holding;
                }
            }
        }
        if (holding == 0)
            break;
    }
    for (Candidate& c : scratch.candidates) {
        if (!c.holding)
            continue;
        for (std::size_t t = c.level; t < kMaxTiers; ++t)
            c.blocks[t] = static_cast<std::uint32_t>(keys.size());
    }
    impl_->gate.leave(gate_slot);

    // Names, and whether each id still belongs to the publisher it was read for.
    std::vector<PublisherMatch> found;
    {
        std::shared_lock<std::shared_mutex> lock(impl.registry_mu);
        for (const Candidate& c : scratch.candidates) {
            if (impl.ids[c.id].life.load(std::memory_order_relaxed) != c.life ||
                c.id >= impl.names.size() || impl.names[c.id] == nullptr)
                continue;
            const auto& name = *impl.names[c.id];
            PublisherMatch m;
            m.pod_key = name.first;
            m.data_parallel_rank = name.second;
            m.blocks = c.blocks;
            m.stale =
                impl.registry.find(detail::PublisherKey{name.first, name.second})->second.stale;
            found.push_back(std::move(m));
        }
    }
    std::sort(found.begin(), found.end(), [](const PublisherMatch& x, const PublisherMatch& y) {
        return x.pod_key != y.pod_key ? x.pod_key < y.pod_key
                                      : x.data_parallel_rank < y.data_parallel_rank;
    });
    for (PublisherMatch& m : found) {
        if (result.pods.empty() || result.pods.back().pod_key != m.pod_key)
            result.pods.push_back(PodMatch{m.pod_key, {}});
        result.pods.back().ranks.push_back(std::move(m));
    }
    return result;
}

std::vector<IndexedPublisher> PrefixIndex::publishers() const {
    std::shared_lock<std::shared_mutex> lock(impl_->registry_mu);
    std::vector<IndexedPublisher> out;
    for (const auto& [key, entry] : impl_->registry) {
        IndexedPublisher p;
        p.pod_key = key.first;
        p.data_parallel_rank = key.second;
        p.blocks = static_cast<std::uint64_t>(std::max<std::int64_t>(
            0, impl_->ids[entry.id].entries.load(std::memory_order_relaxed)));
        p.stale = entry.stale;
        out.push_back(std::move(p));
    }
    return out;
}

PrefixIndexStats PrefixIndex::stats() const {
    PrefixIndexStats s;
    {
        std::shared_lock<std::shared_mutex> lock(impl_->registry_mu);
        s.publishers = impl_->registry.size();
        for (const auto& entry : impl_->registry)
            s.entries += static_cast<std::size_t>(std::max<std::int64_t>(
                0, impl_->ids[entry.second.id].entries.load(std::memory_order_relaxed)));
        s.bytes += impl_->ids.bytes() + impl_->names.capacity() * sizeof(void*);
    }
    s.dead_entries = static_cast<std::size_t>(
        std::max<std::int64_t>(0, impl_->dead_entries.load(std::memory_order_relaxed)));
    for (const auto& shard : impl_->shards) {
        s.keys += shard->keys();
        s.bytes += shard->bytes();
    }
    return s;
}

}  // namespace kvevents

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <kvevents/hashing_check.h>

#include "publisher_key.h"

namespace kvevents {

namespace {

using detail::PublisherKey;
using detail::PublisherOrder;

bool on_gpu(Medium medium) {
    return medium == Medium::kUnset || medium == Medium::kGpu;
}

// What one batch did to a publisher's verdict.
struct BatchTally {
    std::uint64_t matched = 0;
    std::uint64_t mismatched = 0;
    std::string first_mismatch;
};

}  // namespace

struct HashingCheck::Impl {
    enum class Verdict : std::uint8_t { kNone, kMatching, kMismatching };

    struct Publisher {
        std::mutex mu;
        PublisherResult result;
        Verdict verdict = Verdict::kNone;
        std::unordered_map<std::uint64_t, BlockDigest> remembered;
        std::deque<std::uint64_t> remembered_order;  // oldest first
    };

    Impl(BlockHasher h, EventHandler& n, Options o) : hasher(std::move(h)), next(n), options(o) {}

    Publisher& publisher(const std::string& pod_key, int rank) {
        std::lock_guard<std::mutex> lock(mu);
        auto it = publishers.find(PublisherKey{pod_key, rank});
        if (it == publishers.end()) {
            auto made = std::make_unique<Publisher>();
            made->result.pod_key = pod_key;
            made->result.data_parallel_rank = rank;
            it = publishers.emplace(std::make_pair(pod_key, rank), std::move(made)).first;
        }
        return *it->second;
    }

    void remember(Publisher& p, const BlockDigest& digest) {
        if (options.remembered_digests == 0)
            return;
        const std::uint64_t key = digest.to_u64();
        if (!p.remembered.emplace(key, digest).second)
            return;
        p.remembered_order.push_back(key);
        if (p.remembered_order.size() > options.remembered_digests) {
            p.remembered.erase(p.remembered_order.front());
            p.remembered_order.pop_front();
        }
    }

    static void forget(Publisher& p) {
        p.remembered.clear();
        p.remembered_order.clear();
    }

    std::string describe_setup() const {
        return std::string(to_string(hasher.algorithm())) + ", seed '" + hasher.seed() +
               "', block size " + std::to_string(hasher.block_size());
    }

    static void unverifiable(Publisher& p, std::uint64_t blocks, std::string why) {
        p.result.unverifiable += blocks;
        p.result.last_unverifiable = std::move(why);
    }

    static void mismatch(Publisher& p, BatchTally& t, std::uint64_t blocks, std::string what) {
        p.result.mismatched += blocks;
        t.mismatched += blocks;
        p.result.last_mismatch = what;
        if (t.first_mismatch.empty())
            t.first_mismatch = std::move(what);
    }

    void check_stored(Publisher& p, const BlockStored& ev, BatchTally& t) {
        const std::size_t n = ev.block_hashes.size();
        if (n == 0)
            return;
        const std::size_t block_size = hasher.block_size();
        if (ev.token_id_form != TokenIdForm::kPlain)
            return unverifiable(p, n, "token ids are not plain integers");
        if (ev.token_ids.size() != n * block_size) {
            if (ev.block_size && static_cast<std::size_t>(*ev.block_size) != block_size &&
                on_gpu(ev.medium)) {
                return mismatch(p, t, n,
                                "the engine's block size is " + std::to_string(*ev.block_size) +
                                    ", not " + std::to_string(block_size));
            }
            return unverifiable(p, n,
                                std::to_string(ev.token_ids.size()) + " token ids for " +
                                    std::to_string(n) + " blocks of " + std::to_string(block_size));
        }
        const BlockStoredExtras* extras = ev.extras.get();
        const std::vector<ExtraKeyEntry>* extra_keys =
            extras != nullptr && extras->extra_keys ? &*extras->extra_keys : nullptr;
        if (extra_keys != nullptr && extra_keys->size() != n)
            return unverifiable(p, n,
                                "extra_keys has " + std::to_string(extra_keys->size()) +
                                    " entries for " + std::to_string(n) + " blocks");
        if (extra_keys == nullptr && (ev.lora_id || (extras != nullptr && extras->lora_name)))
            return unverifiable(p, n, "a LoRA block sent without extra_keys");

        std::optional<BlockDigest> parent;
        if (ev.parent_block_hash) {
            const BlockHash& sent_parent = *ev.parent_block_hash;
            if (sent_parent.is_digest()) {
                parent = BlockDigest(sent_parent.digest_data(), sent_parent.digest_size());
            } else {
                const auto it = p.remembered.find(sent_parent.to_u64());
                if (it == p.remembered.end())
                    return unverifiable(p, n, "the parent block was not checked here");
                parent = it->second;
            }
        }
        for (std::size_t i = 0; i < n; ++i) {
            const ExtraKeyEntry* entry = extra_keys != nullptr ? &(*extra_keys)[i] : nullptr;
            const std::vector<Value>* keys = entry != nullptr && *entry ? &**entry : nullptr;
            BlockDigest computed;
            try {
                computed =
                    hasher.hash_block(parent ? &*parent : nullptr,
                                      ev.token_ids.data() + i * block_size, block_size, keys);
            } catch (const std::exception& e) {
                return unverifiable(p, n - i, e.what());
            }
            const BlockHash& sent = ev.block_hashes[i];
            const bool same = sent.is_digest() ? computed.to_block_hash() == sent
                                               : sent.to_u64() == computed.to_u64();
            if (same) {
                ++p.result.matched;
                ++t.matched;
                remember(p, computed);
            } else {
                mismatch(
                    p, t, 1,
                    "block " + sent.to_string() + " computed as " +
                        (sent.is_digest() ? computed.to_hex() : std::to_string(computed.to_u64())) +
                        " with " + describe_setup() +
                        ": the engines' --prefix-caching-hash-algo, PYTHONHASHSEED or "
                        "block size differs");
            }
            // A whole digest sent lets the next block be checked on its own.
            parent =
                sent.is_digest() ? BlockDigest(sent.digest_data(), sent.digest_size()) : computed;
        }
    }

    // The notice a batch's tally calls for, if the publisher's verdict changes.
    std::optional<std::pair<StreamNotice::Kind, std::string>> judge(Publisher& p, BatchTally& t) {
        if (t.mismatched > 0 && p.verdict != Verdict::kMismatching) {
            p.verdict = Verdict::kMismatching;
            return std::make_pair(StreamNotice::Kind::kHashMismatch, std::move(t.first_mismatch));
        }
        if (t.mismatched == 0 && t.matched > 0 && p.verdict != Verdict::kMatching) {
            p.verdict = Verdict::kMatching;
            return std::make_pair(
                StreamNotice::Kind::kHashesMatch,
                std::to_string(t.matched) + " block(s) checked with " + describe_setup());
        }
        return std::nullopt;
    }

    const BlockHasher hasher;
    EventHandler& next;
    const Options options;
    mutable std::mutex mu;  // guards the map; each publisher has its own lock
    std::map<std::pair<std::string, int>, std::unique_ptr<Publisher>, PublisherOrder> publishers;
};

HashingCheck::HashingCheck(BlockHasher hasher, EventHandler& next)
    : HashingCheck(std::move(hasher), next, Options{}) {}

HashingCheck::HashingCheck(BlockHasher hasher, EventHandler& next, Options options)
    : impl_(std::make_unique<Impl>(std::move(hasher), next, options)) {}

HashingCheck::~HashingCheck() = default;

const BlockHasher& HashingCheck::hasher() const {
    return impl_->hasher;
}

void HashingCheck::on_batch(ReceivedBatch& batch) {
    Impl::Publisher& p = impl_->publisher(batch.pod_key, batch.data_parallel_rank);
    std::optional<std::pair<StreamNotice::Kind, std::string>> verdict;
    {
        std::lock_guard<std::mutex> lock(p.mu);
        BatchTally tally;
        for (const Event& event : batch.batch.events) {
            if (const auto* stored = std::get_if<BlockStored>(&event)) {
                impl_->check_stored(p, *stored, tally);
            } else if (std::holds_alternative<AllBlocksCleared>(event)) {
                Impl::forget(p);
            }
        }
        verdict = impl_->judge(p, tally);
    }
    // Made before the batch is passed on: the next handler may move from it.
    std::optional<StreamNotice> notice;
    if (verdict) {
        notice = StreamNotice{verdict->first,
                              batch.pod_key,
                              batch.sequence,
                              std::nullopt,
                              ConnectionState::kConnected,
                              std::move(verdict->second),
                              batch.data_parallel_rank};
    }
    impl_->next.on_batch(batch);
    if (notice)
        impl_->next.on_notice(*notice);
}

void HashingCheck::on_notice(const StreamNotice& notice) {
    if (notice.kind == StreamNotice::Kind::kPublisherRestarted ||
        notice.kind == StreamNotice::Kind::kContinuityLost) {
        Impl::Publisher& p = impl_->publisher(notice.pod_key, notice.data_parallel_rank);
        std::lock_guard<std::mutex> lock(p.mu);
        Impl::forget(p);
    }
    impl_->next.on_notice(notice);
}

std::vector<HashingCheck::PublisherResult> HashingCheck::results() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    std::vector<PublisherResult> out;
    out.reserve(impl_->publishers.size());
    for (const auto& entry : impl_->publishers) {
        std::lock_guard<std::mutex> publisher_lock(entry.second->mu);
        out.push_back(entry.second->result);
    }
    return out;
}

}  // namespace kvevents

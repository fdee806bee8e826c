// A randomized model test of PrefixIndex: seeded runs of stores, removals, clears, staleness,
// publisher removals and sweeps over a small key space, with every query's answer, the entry
// counts and the publisher list checked against a plain model after each step. On failure the
// run's seed and a shrunk list of steps are printed.
//
// KVEVENTS_INDEX_MODEL_RUNS (default 40) and KVEVENTS_INDEX_MODEL_SEED (first seed, default 1)
// choose the runs.

#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/prefix_index.h>

namespace kvevents {
namespace {

enum class OpKind { kStore, kRemove, kClear, kMarkStale, kRemovePublisher, kSweep };

struct Op {
    OpKind kind;
    int publisher = 0;  // pod publisher / 2, rank publisher % 2
    std::uint64_t first = 0;
    std::size_t count = 0;
    std::size_t tier = 0;
};

std::string pod_of(int publisher) {
    return "pod-" + std::to_string(publisher / 2);
}
int rank_of(int publisher) {
    return publisher % 2;
}

std::string describe(const Op& op) {
    std::ostringstream out;
    const char* names[] = {"store", "remove", "clear", "mark_stale", "remove_publisher", "sweep"};
    out << names[static_cast<int>(op.kind)];
    if (op.kind != OpKind::kSweep)
        out << " " << pod_of(op.publisher) << "#" << rank_of(op.publisher);
    if (op.kind == OpKind::kStore || op.kind == OpKind::kRemove)
        out << " keys " << op.first << ".." << op.first + op.count - 1 << " tier " << op.tier;
    return out.str();
}

// The model: per publisher, each key's tier set, and whether it is stale.
struct ModelPublisher {
    std::map<std::uint64_t, std::uint8_t> tiers;
    bool stale = false;
};
using Model = std::map<int, ModelPublisher>;

void apply(const Op& op, Model& model, PrefixIndex& index) {
    const std::string pod = pod_of(op.publisher);
    const int rank = rank_of(op.publisher);
    std::vector<std::uint64_t> keys;
    for (std::size_t i = 0; i < op.count; ++i) keys.push_back(op.first + i);
    const auto bit = static_cast<std::uint8_t>(1U << op.tier);
    switch (op.kind) {
        case OpKind::kStore: {
            index.store(pod, rank, keys, op.tier);
            ModelPublisher& p = model[op.publisher];
            for (const auto k : keys) p.tiers[k] |= bit;
            break;
        }
        case OpKind::kRemove: {
            index.remove(pod, rank, keys, op.tier);
            ModelPublisher& p = model[op.publisher];
            for (const auto k : keys) {
                auto it = p.tiers.find(k);
                if (it == p.tiers.end())
                    continue;
                it->second = static_cast<std::uint8_t>(it->second & ~bit);
                if (it->second == 0)
                    p.tiers.erase(it);
            }
            break;
        }
        case OpKind::kClear:
            index.clear(pod, rank);
            model[op.publisher] = ModelPublisher{};
            break;
        case OpKind::kMarkStale:
            index.mark_stale(pod, rank);
            model[op.publisher].stale = true;
            break;
        case OpKind::kRemovePublisher:
            index.remove_publisher(pod, rank);
            model.erase(op.publisher);
            break;
        case OpKind::kSweep:
            index.sweep();
            break;
    }
}

// What the model says of a prompt: for each tier t, the leading blocks all held on tiers 0..t.
std::map<int, PublisherMatch> expected_match(const Model& model,
                                             const std::vector<std::uint64_t>& prompt) {
    std::map<int, PublisherMatch> out;
    for (const auto& [publisher, p] : model) {
        PublisherMatch m;
        m.pod_key = pod_of(publisher);
        m.data_parallel_rank = rank_of(publisher);
        m.stale = p.stale;
        for (std::size_t t = 0; t < kMaxTiers; ++t) {
            const auto allowed = static_cast<std::uint8_t>((2U << t) - 1);
            std::uint32_t n = 0;
            for (const auto key : prompt) {
                const auto it = p.tiers.find(key);
                if (it == p.tiers.end() || (it->second & allowed) == 0)
                    break;
                ++n;
            }
            m.blocks[t] = n;
        }
        if (m.any_tier_blocks() > 0)
            out.emplace(publisher, m);
    }
    return out;
}

std::optional<std::string> check_prompt(const Model& model,
                                        const PrefixIndex& index,
                                        const std::vector<std::uint64_t>& prompt) {
    const std::map<int, PublisherMatch> want = expected_match(model, prompt);
    const PrefixMatch got = index.match(prompt);
    std::ostringstream problem;
    std::size_t seen = 0;
    std::size_t longest = 0;
    for (const PodMatch& pod : got.pods) {
        for (const PublisherMatch& r : pod.ranks) {
            ++seen;
            const int publisher = std::stoi(r.pod_key.substr(4)) * 2 + r.data_parallel_rank;
            const auto it = want.find(publisher);
            if (it == want.end()) {
                problem << r.pod_key << "#" << r.data_parallel_rank << " matched, model: no";
                return problem.str();
            }
            if (r.blocks != it->second.blocks || r.stale != it->second.stale) {
                problem << r.pod_key << "#" << r.data_parallel_rank << " blocks/stale";
                for (std::size_t t = 0; t < kMaxTiers; ++t)
                    problem << " " << r.blocks[t] << "/" << it->second.blocks[t];
                problem << " stale " << r.stale << "/" << it->second.stale;
                return problem.str();
            }
            longest = std::max(longest, r.any_tier_blocks());
        }
    }
    if (seen != want.size())
        return "index matched " + std::to_string(seen) + " publishers, model " +
               std::to_string(want.size());
    const std::size_t probes = std::min(prompt.size(), longest + 1);
    if (!prompt.empty() && got.blocks_probed != probes)
        return "probed " + std::to_string(got.blocks_probed) + " blocks, expected " +
               std::to_string(probes);
    return std::nullopt;
}

std::optional<std::string> check_all(const Model& model, const PrefixIndex& index) {
    std::size_t entries = 0;
    for (const auto& entry : model) entries += entry.second.tiers.size();
    const PrefixIndexStats stats = index.stats();
    if (stats.entries != entries)
        return "index has " + std::to_string(stats.entries) + " entries, model " +
               std::to_string(entries);
    const auto publishers = index.publishers();
    if (publishers.size() != model.size())
        return "index lists " + std::to_string(publishers.size()) + " publishers, model " +
               std::to_string(model.size());
    for (const IndexedPublisher& p : publishers) {
        const auto it = model.find(std::stoi(p.pod_key.substr(4)) * 2 + p.data_parallel_rank);
        if (it == model.end() || it->second.tiers.size() != p.blocks || it->second.stale != p.stale)
            return "publisher " + p.pod_key + "#" + std::to_string(p.data_parallel_rank) +
                   " differs from the model";
    }
    // Every contiguous range of the key space, and a few out of order.
    for (std::uint64_t first = 0; first < 24; ++first) {
        for (const std::size_t n : {std::size_t{2}, std::size_t{7}}) {
            std::vector<std::uint64_t> prompt;
            for (std::size_t i = 0; i < n; ++i) prompt.push_back(first + i);
            if (auto problem = check_prompt(model, index, prompt))
                return "prompt " + std::to_string(first) + "+" + std::to_string(n) + ": " +
                       *problem;
        }
    }
    for (const std::vector<std::uint64_t>& prompt :
         {std::vector<std::uint64_t>{3, 1, 2}, {5, 5, 6}, {}}) {
        if (auto problem = check_prompt(model, index, prompt))
            return "an out-of-order prompt: " + *problem;
    }
    return std::nullopt;
}

// Runs `ops` on a fresh index; the first step at which the index and the model disagree.
std::optional<std::string> replay(const std::vector<Op>& ops, std::size_t shards) {
    PrefixIndex::Options options;
    options.shards = shards;
    PrefixIndex index(options);
    Model model;
    for (std::size_t i = 0; i < ops.size(); ++i) {
        apply(ops[i], model, index);
        if (ops[i].kind == OpKind::kSweep && index.stats().dead_entries != 0)
            return "step " + std::to_string(i) + ": entries left after a sweep";
        if (auto problem = check_all(model, index))
            return "step " + std::to_string(i) + " (" + describe(ops[i]) + "): " + *problem;
    }
    return std::nullopt;
}

std::vector<Op> random_ops(std::mt19937_64& rng, std::size_t steps) {
    std::vector<Op> ops;
    auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    for (std::size_t i = 0; i < steps; ++i) {
        Op op;
        const std::size_t roll = pick(100);
        op.kind = roll < 55   ? OpKind::kStore
                  : roll < 80 ? OpKind::kRemove
                  : roll < 88 ? OpKind::kClear
                  : roll < 93 ? OpKind::kMarkStale
                  : roll < 97 ? OpKind::kRemovePublisher
                              : OpKind::kSweep;
        op.publisher = static_cast<int>(pick(6));
        op.first = pick(28);
        op.count = 1 + pick(6);
        // Mostly the GPU, then CPU, sometimes a named tier.
        const std::size_t t = pick(10);
        op.tier = t < 5 ? kGpuTier : t < 8 ? kCpuTier : t < 9 ? kDiskTier : 4 + pick(4);
        ops.push_back(op);
    }
    return ops;
}

// Drops steps one at a time while the run still fails, until no single step can go.
std::vector<Op> shrink(std::vector<Op> ops, std::size_t shards) {
    for (bool smaller = true; smaller;) {
        smaller = false;
        for (std::size_t i = ops.size(); i-- > 0;) {
            std::vector<Op> fewer = ops;
            fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(i));
            if (replay(fewer, shards)) {
                ops = std::move(fewer);
                smaller = true;
            }
        }
    }
    return ops;
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(PrefixIndexModel, AgreesWithTheModelAfterEveryStep) {
    const std::uint64_t runs = env_or("KVEVENTS_INDEX_MODEL_RUNS", 40);
    const std::uint64_t first_seed = env_or("KVEVENTS_INDEX_MODEL_SEED", 1);
    for (std::uint64_t seed = first_seed; seed < first_seed + runs; ++seed) {
        std::mt19937_64 rng(seed);
        const std::size_t shards = std::size_t{1} << (rng() % 4);  // 1 to 8
        const std::vector<Op> ops = random_ops(rng, 120);
        if (const auto problem = replay(ops, shards)) {
            const std::vector<Op> small = shrink(ops, shards);
            std::ostringstream trace;
            for (const Op& op : small) trace << "  " << describe(op) << "\n";
            FAIL() << "seed " << seed << " (" << shards << " shards): " << *problem
                   << "\nshrunk to " << small.size() << " steps: " << *replay(small, shards) << "\n"
                   << trace.str() << "rerun with KVEVENTS_INDEX_MODEL_SEED=" << seed
                   << " KVEVENTS_INDEX_MODEL_RUNS=1";
        }
    }
}

}  // namespace
}  // namespace kvevents

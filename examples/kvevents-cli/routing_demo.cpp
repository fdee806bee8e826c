#include "routing_demo.h"

#include <chrono>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <kvevents/block_hasher.h>
#include <kvevents/fleet.h>
#include <kvevents/hashing_check.h>
#include <kvevents/prefix_index.h>
#include <kvevents/prefix_index_feed.h>
#include <kvevents/testing/mock_publisher.h>
#include <kvevents/testing/vllm_blocks.h>

namespace kvevents::cli {
namespace {

constexpr std::size_t kBlockSize = 16;
constexpr std::size_t kSystemPromptBlocks = 16;
constexpr std::size_t kPromptBlocks = 40;

// A prompt of kPromptBlocks blocks: a system prompt every conversation shares, then its own turn.
std::vector<std::int64_t> conversation(std::int64_t turn) {
    std::vector<std::int64_t> tokens;
    for (std::size_t i = 0; i < kSystemPromptBlocks * kBlockSize; ++i)
        tokens.push_back(static_cast<std::int64_t>(i));
    while (tokens.size() < kPromptBlocks * kBlockSize)
        tokens.push_back(100000 * turn + static_cast<std::int64_t>(tokens.size()));
    return tokens;
}

struct Engine {
    std::string pod;
    testing::MockPublisher publisher;
    explicit Engine(std::string name) : pod(std::move(name)) {}
};

void publish(Engine& e, BlockStored event) {
    EventBatch batch;
    batch.events.emplace_back(std::move(event));
    e.publisher.publish(batch);
}

std::string tier_line(const PublisherMatch& m) {
    return "GPU " + std::to_string(m.blocks[kGpuTier]) + ", +CPU " +
           std::to_string(m.blocks[kCpuTier]) + ", any tier " + std::to_string(m.any_tier_blocks());
}

}  // namespace

bool run_routing_demo(std::ostream& out, const std::shared_ptr<spdlog::logger>& logger) {
    const BlockHasher engines_hash(HashAlgorithm::kSha256, "0", kBlockSize);
    const std::vector<std::int64_t> prompt = conversation(1);

    PrefixIndex index;
    PrefixIndexFeed feed(index);
    HashingCheck check(engines_hash, feed);
    FleetOptions fleet_options;
    fleet_options.logger = logger;
    Fleet fleet(fleet_options, check);

    Engine a("engine-a");  // served another conversation: holds the system prompt
    Engine b("engine-b");  // served this one; its last blocks went to CPU memory
    Engine c("engine-c");  // served this one, then evicted all but its first 24 blocks
    for (Engine* e : {&a, &b, &c}) {
        ClientOptions o;
        o.pod_key = e->pod;
        o.endpoint = e->publisher.endpoint();
        o.replay_endpoint = e->publisher.replay_endpoint();
        o.logger = logger;
        fleet.add(o);
        if (!e->publisher.wait_for_subscriber(std::chrono::seconds(10))) {
            out << "route: " << e->pod << " was never subscribed to\n";
            return false;
        }
    }
    publish(a, testing::stored_blocks(engines_hash, conversation(2), {}, 0, kPromptBlocks));
    publish(b, testing::stored_blocks(engines_hash, prompt, {}, 0, 32));
    BlockStored offloaded = testing::stored_blocks(engines_hash, prompt, {}, 32, 8);
    offloaded.set_medium("CPU");
    publish(b, offloaded);
    publish(c, testing::stored_blocks(engines_hash, prompt, {}, 0, kPromptBlocks));
    BlockRemoved evicted;
    for (const BlockDigest& d : engines_hash.hash_prompt(prompt))
        evicted.block_hashes.push_back(BlockHash::from_unsigned(d.to_u64()));
    evicted.block_hashes.erase(evicted.block_hashes.begin(), evicted.block_hashes.begin() + 24);
    EventBatch eviction;
    eviction.events.emplace_back(evicted);
    c.publisher.publish(eviction);

    // Each engine's batches are in the index once the fleet has delivered them all.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto delivered = [&] {
        std::uint64_t batches = 0;
        for (const PublisherStatus& p : fleet.publishers()) batches += p.stats.batches;
        return batches >= 5;
    };
    while (!delivered() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    fleet.stop();

    out << "route: 3 mock engines publish blocks hashed with "
        << to_string(engines_hash.algorithm()) << ", PYTHONHASHSEED=" << engines_hash.seed()
        << ", block size " << kBlockSize << '\n';
    bool hashes_match = true;
    for (const HashingCheck::PublisherResult& r : check.results()) {
        out << "route: hashing check " << r.pod_key << ": "
            << (r.matching() ? "hashes match" : "hashes DO NOT match") << " (" << r.matched
            << " blocks checked)\n";
        hashes_match = hashes_match && r.matching();
    }
    const PrefixMatch match = index.match(engines_hash.prompt_keys(prompt));
    out << "route: a prompt of " << kPromptBlocks << " blocks, " << match.blocks_probed
        << " looked up:\n";
    for (const PodMatch& pod : match.pods)
        for (const PublisherMatch& m : pod.ranks)
            out << "route:   " << m.pod_key << ": " << tier_line(m) << '\n';
    const auto best = top_k(match, 1);
    if (best.empty()) {
        out << "route: FAILED: no pod holds the prompt\n";
        return false;
    }
    out << "route: send it to " << best[0].pod_key << " (score " << best[0].score
        << ": GPU blocks count 1, CPU blocks 0.8)\n";
    const bool ok = hashes_match && match.pods.size() == 3 && best[0].pod_key == "engine-b";
    out << "route: " << (ok ? "OK" : "FAILED: not the expected routing") << '\n';
    return ok;
}

}  // namespace kvevents::cli

// The randomized model test of the stream state machine: many seeds of random operations against
// a model publisher and network, every invariant checked after every step. A failure is shrunk
// and printed as a unit test that reproduces it.

#include "stream_model.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include <gtest/gtest.h>

namespace kvevents::model {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? std::stoull(value) : fallback;
}

// What all runs did, printed so a change that makes the machine quietly give up shows.
struct Totals {
    std::size_t steps = 0, delivered = 0, losses = 0, restarts = 0, false_restarts = 0,
                continuity_lost = 0, undetectable = 0;

    void add(const RunResult& r) {
        steps += r.steps;
        delivered += r.delivered;
        losses += r.losses;
        restarts += r.restarts;
        false_restarts += r.false_restarts;
        continuity_lost += r.continuity_lost;
        undetectable += r.undetectable_restarts;
    }

    void print(const char* what, std::uint64_t runs, std::uint64_t base) const {
        std::cout << what << ": " << runs << " runs from seed " << base << ", " << steps
                  << " steps; delivered " << delivered << ", loss notices " << losses
                  << ", restart notices " << restarts << " (" << false_restarts
                  << " with no restart), continuity lost " << continuity_lost
                  << ", invisible restarts " << undetectable << "\n";
    }
};

// Runs one seed; on failure prints the seed and the shrunk trace, and returns false.
bool run_seed(std::uint64_t seed, std::size_t ops_per_run, Totals& totals) {
    const ModelConfig config = random_config(seed);
    const std::vector<Op> ops = random_ops(seed, ops_per_run);
    const RunResult result = run(config, ops);
    totals.add(result);
    if (result.ok)
        return true;
    const std::vector<Op> minimal = shrink(config, ops);
    // KVEVENTS_MODEL_TRACE=1 prints the shrunk run operation by operation.
    set_tracing(std::getenv("KVEVENTS_MODEL_TRACE") != nullptr);
    const RunResult again = run(config, minimal);
    set_tracing(false);
    ADD_FAILURE() << "seed " << seed << ": " << result.failure << "\nshrunk to " << minimal.size()
                  << " operations: " << again.failure << "\n"
                  << as_unit_test(config, minimal);
    return false;
}

// At least 1,000,000 random steps in the normal run. KVEVENTS_MODEL_SEED moves the seeds.
TEST(StreamModel, RandomRunsKeepEveryInvariant) {
    const std::uint64_t base = env_or("KVEVENTS_MODEL_SEED", 1);
    constexpr std::size_t kRuns = 2500;
    constexpr std::size_t kOpsPerRun = 400;
    Totals totals;
    for (std::uint64_t i = 0; i < kRuns; ++i) {
        if (!run_seed(base + i, kOpsPerRun, totals))
            return;
    }
    totals.print("model", kRuns, base);
    EXPECT_GE(totals.steps, 1000000U);
    // Restart notices without a restart are a rare, safe fallback, never the normal path.
    EXPECT_LE(totals.false_restarts * 100, totals.restarts);
}

// The soak: fresh seeds for KVEVENTS_MODEL_SECONDS (skipped when unset); labelled "soak" in CTest.
TEST(StreamModel, Soak) {
    const std::uint64_t seconds = env_or("KVEVENTS_MODEL_SECONDS", 0);
    if (seconds == 0)
        GTEST_SKIP() << "set KVEVENTS_MODEL_SECONDS to soak";
    const std::uint64_t base = env_or(
        "KVEVENTS_MODEL_SEED",
        static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    Totals totals;
    std::uint64_t runs = 0;
    while (std::chrono::steady_clock::now() < until) {
        if (!run_seed(base + runs, 1000, totals))
            return;
        ++runs;
    }
    totals.print("model soak", runs, base);
    EXPECT_LE(totals.false_restarts * 100, totals.restarts);
}

}  // namespace
}  // namespace kvevents::model

// kvevents-cli subscribe and demo, run as a user runs them, against the mock publisher.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>

#include <kvevents/testing/mock_publisher.h>

#include "subprocess.h"
#include "test_batches.h"
#include "test_endpoints.h"

namespace kvevents {
namespace {

using namespace std::chrono_literals;
using test::Subprocess;
using testing::MockPublisher;
using testing::MockPublisherOptions;

const std::string kCli = KVEVENTS_CLI_PATH;

std::vector<std::string> read_lines(Subprocess& p, std::size_t n) {
    std::vector<std::string> lines;
    while (lines.size() < n) {
        auto line = p.read_line(10s);
        if (!line)
            break;
        lines.push_back(*line);
    }
    return lines;
}

TEST(CliSubscribe, JsonWithReplayPrintsEveryBatchOnceThenStopsAtCount) {
    MockPublisher pub;
    pub.publish(test::one_store(100));
    pub.publish(test::one_store(101));  // before the CLI starts: only replay has these
    Subprocess cli({kCli, "subscribe", "--endpoint", pub.endpoint(), "--replay",
                    pub.replay_endpoint(), "--format", "json", "--count", "4"});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(102));
    pub.publish(test::one_store(103));
    const auto lines = read_lines(cli, 4);
    ASSERT_EQ(lines.size(), 4U);
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(lines[i], "{\"pod\":\"" + pub.endpoint() + "\",\"seq\":" + std::to_string(i) +
                                ",\"ts\":1700000000.5,\"dp_rank\":0,\"idx\":0,\"type\":"
                                "\"BlockStored\",\"block_hashes\":[" +
                                std::to_string(100 + i) +
                                "],\"parent_block_hash\":null,\"token_ids\":[1,2,3,4],"
                                "\"block_size\":4,\"lora_id\":null,\"medium\":\"GPU\"}");
    }
    EXPECT_EQ(cli.wait(), 0);
    EXPECT_NE(cli.stderr_text().find("stats " + pub.endpoint() + ": batches="), std::string::npos)
        << cli.stderr_text();
}

TEST(CliSubscribe, FormatNonePrintsNoEventsButCountsThemAndReportsStatistics) {
    MockPublisher pub;
    Subprocess cli({kCli, "subscribe", "--endpoint", pub.endpoint(), "--no-replay", "--format",
                    "none", "--count", "2"});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(1));
    pub.publish(test::one_store(2));
    EXPECT_EQ(cli.wait(), 0);  // --count ends the run: the events were counted
    EXPECT_FALSE(cli.read_line(1s).has_value());
    EXPECT_NE(cli.stderr_text().find("batches=2 events=2"), std::string::npos) << cli.stderr_text();
}

TEST(CliSubscribe, RaisesTheOpenFileLimitAndSaysSo) {
    MockPublisher pub;
    const std::string command = "ulimit -Sn 512 && exec " + std::string(kCli) +
                                " subscribe --endpoint " + pub.endpoint() +
                                " --no-replay --format none --count 1 --log-level info";
    Subprocess cli({"/bin/sh", "-c", command});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(1));
    EXPECT_EQ(cli.wait(), 0);
    EXPECT_NE(cli.stderr_text().find("raised the open-file limit from 512 to"), std::string::npos)
        << cli.stderr_text();
}

TEST(CliSubscribe, TextFormatAndSigtermStopCleanly) {
    MockPublisher pub;
    Subprocess cli({kCli, "subscribe", "--endpoint", pub.endpoint(), "--no-replay"});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(7));
    const auto line = cli.read_line(10s);
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(*line, pub.endpoint() + " seq=0 BlockStored hashes=1 first=7 tokens=4 medium=GPU");
    cli.signal(SIGTERM);
    EXPECT_EQ(cli.wait(), 0);
    EXPECT_NE(cli.stderr_text().find("stopping on SIGTERM"), std::string::npos);
    EXPECT_NE(cli.stderr_text().find("batches=1 events=1"), std::string::npos);
}

TEST(CliSubscribe, JsonNoticesReportARestartInline) {
    MockPublisher pub;
    Subprocess cli({kCli, "subscribe", "--endpoint", pub.endpoint(), "--replay",
                    pub.replay_endpoint(), "--format", "json", "--notices", "--topic", ""});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(1));
    pub.publish(test::one_store(2));
    std::vector<std::string> lines;
    // The old incarnation's batches are delivered first (a restart before anything of it was
    // delivered needs no notice).
    while (lines.empty() || lines.back().find("\"block_hashes\":[2]") == std::string::npos) {
        const auto line = cli.read_line(10s);
        ASSERT_TRUE(line.has_value());
        lines.push_back(*line);
    }
    pub.restart();
    pub.publish(test::one_store(3));
    bool saw_restart_before_new_batch = false;
    for (int i = 0; i < 20 && !saw_restart_before_new_batch; ++i) {
        const auto line = cli.read_line(10s);
        ASSERT_TRUE(line.has_value());
        lines.push_back(*line);
        if (line->find("\"block_hashes\":[3]") != std::string::npos) {
            for (const auto& earlier : lines) {
                saw_restart_before_new_batch |=
                    earlier.find("\"notice\":\"publisher_restarted\"") != std::string::npos;
            }
            break;
        }
    }
    EXPECT_TRUE(saw_restart_before_new_batch);
    cli.signal(SIGINT);
    EXPECT_EQ(cli.wait(), 0);
}

TEST(CliSubscribe, UnreachablePublisherIsNotAnErrorAndDurationEndsTheRun) {
    const std::string endpoint = test::unused_endpoints().live;
    Subprocess cli({kCli, "subscribe", "--endpoint", endpoint, "--duration", "0.3",
                    "--stats-interval", "0.1"});
    EXPECT_EQ(cli.wait(), 0);
    const std::string err = cli.stderr_text();
    EXPECT_NE(err.find("batches=0"), std::string::npos) << err;
    EXPECT_NE(err.find("state=connecting"), std::string::npos) << err;
    // --stats-interval 0.1 over 0.3 s: periodic lines before the final one.
    std::size_t stats_lines = 0;
    for (std::size_t at = err.find("stats "); at != std::string::npos;
         at = err.find("stats ", at + 1)) {
        ++stats_lines;
    }
    EXPECT_GE(stats_lines, 2U) << err;
}

TEST(CliSubscribe, BindModeWaitsForAnEngineThatConnectsOut) {
    // Find a free port, then let the CLI bind it and the engine connect to it.
    const std::string endpoint = test::unused_endpoints().live;
    Subprocess cli(
        {kCli, "subscribe", "--endpoint", endpoint, "--bind", "--no-replay", "--count", "1"});
    MockPublisher pub(test::connecting_to(endpoint));
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(9));
    const auto line = cli.read_line(10s);
    ASSERT_TRUE(line.has_value());
    EXPECT_NE(line->find("first=9"), std::string::npos);
    EXPECT_EQ(cli.wait(), 0);
}

TEST(CliSubscribe, DpSizeFollowsEveryRankOnConsecutivePorts) {
    // Two publishers on ports P and P+1, as data-parallel ranks 0 and 1 of one engine.
    std::unique_ptr<MockPublisher> rank0;
    std::unique_ptr<MockPublisher> rank1;
    for (int attempt = 0; attempt < 50 && !rank1; ++attempt) {
        MockPublisherOptions po;
        po.replay_endpoint.clear();
        rank0 = std::make_unique<MockPublisher>(po);
        const std::string ep = rank0->endpoint();
        const int port = std::stoi(ep.substr(ep.rfind(':') + 1));
        po.endpoint = "tcp://127.0.0.1:" + std::to_string(port + 1);
        po.data_parallel_rank = 1;
        try {
            rank1 = std::make_unique<MockPublisher>(po);
        } catch (const std::exception&) {
            // P+1 is taken: try another P.
        }
    }
    ASSERT_TRUE(rank1) << "no two consecutive free ports found";
    const std::string base = rank0->endpoint();
    Subprocess cli({kCli, "subscribe", "--endpoint", base, "--no-replay", "--dp-size", "2",
                    "--format", "json", "--count", "2"});
    ASSERT_TRUE(rank0->wait_for_subscriber(10s));
    ASSERT_TRUE(rank1->wait_for_subscriber(10s));
    rank0->publish(test::one_store(10));
    rank1->publish(test::one_store(11));
    const auto lines = read_lines(cli, 2);
    ASSERT_EQ(lines.size(), 2U);
    const std::string all = lines[0] + lines[1];
    EXPECT_NE(all.find("\"pod\":\"" + base + "#dp0\",\"seq\":0,\"ts\":1700000000.5,\"dp_rank\":0"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("\"pod\":\"" + base + "#dp1\",\"seq\":0,\"ts\":1700000000.5,\"dp_rank\":1"),
              std::string::npos)
        << all;
    EXPECT_EQ(cli.wait(), 0);
}

TEST(CliDemo, RunsByItselfAndVerifiesExactlyOnceDelivery) {
    Subprocess cli({kCli, "demo", "--quiet"});
    EXPECT_EQ(cli.wait(30s), 0) << cli.stderr_text();
    const std::string err = cli.stderr_text();
    EXPECT_NE(err.find("demo: OK: every batch exactly once, in order"), std::string::npos) << err;
    EXPECT_NE(err.find("0 lost, 1 restart seen"), std::string::npos) << err;
}

TEST(CliDemo, PrintsEventsAsJson) {
    Subprocess cli({kCli, "demo", "--format", "json"});
    const auto first = cli.read_line(10s);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->rfind("{\"pod\":\"demo-pod\",\"seq\":0,", 0), 0U) << *first;
    EXPECT_EQ(cli.wait(30s), 0) << cli.stderr_text();
}

}  // namespace
}  // namespace kvevents

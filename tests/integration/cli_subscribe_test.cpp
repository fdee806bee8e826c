// kvevents-cli subscribe and demo, run as a user runs them, against the mock publisher.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <kvevents/testing/mock_publisher.h>
#include <kvevents/testing/vllm_blocks.h>

#include "metrics_text.h"
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
                    pub.replay_endpoint(), "--format", "json", "--count", "4", "--log-level",
                    "info"});
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
    EXPECT_NE(cli.stderr_text().find("connecting to " + pub.endpoint() + " (ZMTP reader)"),
              std::string::npos)
        << cli.stderr_text();
}

TEST(CliSubscribe, ViaLibzmqReadsThePublisherThroughASubSocket) {
    MockPublisher pub;
    Subprocess cli({kCli, "subscribe", "--endpoint", pub.endpoint(), "--no-replay", "--via-libzmq",
                    "--format", "json", "--count", "2", "--log-level", "debug"});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(100));
    pub.publish(test::one_store(101));
    ASSERT_EQ(read_lines(cli, 2).size(), 2U);
    EXPECT_EQ(cli.wait(), 0);
    EXPECT_NE(cli.stderr_text().find("connecting to " + pub.endpoint()), std::string::npos);
    EXPECT_EQ(cli.stderr_text().find("(ZMTP reader)"), std::string::npos) << cli.stderr_text();
}

// The engine hashes with PYTHONHASHSEED=1234; a CLI told 0 says the hashes do not match, one
// told 1234 says they do.
TEST(CliSubscribe, CheckHashingSaysPerPodWhetherTheEnginesHashAsConfigured) {
    const BlockHasher engine(HashAlgorithm::kSha256, "1234", 16);
    for (const char* seed : {"0", "1234"}) {
        MockPublisher pub;
        Subprocess cli({kCli, "subscribe", "--endpoint", pub.endpoint(), "--no-replay", "--format",
                        "none", "--count", "4", "--check-hashing", "--hash-seed", seed,
                        "--block-size", "16"});
        ASSERT_TRUE(pub.wait_for_subscriber(10s));
        for (int p = 0; p < 4; ++p) {
            EventBatch batch;
            batch.events.emplace_back(
                testing::stored_blocks(engine, testing::prompt_tokens(32, 100 * p), {}, 0, 2));
            pub.publish(batch);
        }
        EXPECT_EQ(cli.wait(), 0);
        const std::string err = cli.stderr_text();
        const std::string pod = pub.endpoint();
        if (std::string(seed) == "0") {
            EXPECT_NE(err.find("notice " + pod + ": block hashes DO NOT match: block "),
                      std::string::npos)
                << err;
            EXPECT_NE(err.find("hashing " + pod + ": MISMATCH matched=0 mismatched=8"),
                      std::string::npos)
                << err;
        } else {
            EXPECT_NE(err.find("notice " + pod +
                               ": block hashes match: 2 block(s) checked with "
                               "sha256, seed '1234', block size 16"),
                      std::string::npos)
                << err;
            EXPECT_NE(err.find("hashing " + pod + ": match matched=8 mismatched=0"),
                      std::string::npos)
                << err;
        }
    }
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

// A batch whose hashes and parent are above 2^53, where doubles (jq 1.6, JavaScript) round them.
EventBatch batch_with_large_hashes() {
    BlockStored stored;
    stored.block_hashes = {BlockHash::from_unsigned(1234605616436508552ULL),
                           BlockHash::from_unsigned(17357386176853808775ULL),
                           BlockHash::from_unsigned(42)};
    stored.parent_block_hash = BlockHash::from_unsigned(1234605616436508551ULL);
    stored.token_ids = {1, 2, 3, 4, 5, 6};
    stored.block_size = 2;
    stored.set_medium("GPU");
    BlockRemoved removed;
    removed.block_hashes = {BlockHash::from_unsigned(7), BlockHash::from_unsigned(8)};
    EventBatch batch;
    batch.ts = 1700000000.5;
    batch.events.emplace_back(std::move(stored));
    batch.events.emplace_back(std::move(removed));
    return batch;
}

TEST(CliSubscribe, FlagsTakeTheirValueAfterAnEqualsSign) {
    MockPublisher pub;
    Subprocess cli({kCli, "subscribe", "--endpoint=" + pub.endpoint(),
                    "--replay=" + pub.replay_endpoint(), "--format=json", "--count=1"});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    pub.publish(test::one_store(5));
    const auto line = cli.read_line(10s);
    ASSERT_TRUE(line.has_value()) << cli.stderr_text();
    EXPECT_EQ(line->rfind("{\"pod\":\"" + pub.endpoint() + "\",\"seq\":0,", 0), 0U) << *line;
    EXPECT_NE(line->find("\"block_hashes\":[5]"), std::string::npos) << *line;
    EXPECT_EQ(cli.wait(), 0) << cli.stderr_text();
}

TEST(CliSubscribe, VerboseTextShowsEveryHashOfAnEvent) {
    for (const bool verbose : {false, true}) {
        MockPublisher pub;
        std::vector<std::string> args = {kCli,          "subscribe", "--endpoint", pub.endpoint(),
                                         "--no-replay", "--count",   "2"};
        if (verbose)
            args.push_back("--verbose");
        Subprocess cli(args);
        ASSERT_TRUE(pub.wait_for_subscriber(10s));
        pub.publish(batch_with_large_hashes());
        const auto lines = read_lines(cli, 2);
        ASSERT_EQ(lines.size(), 2U) << cli.stderr_text();
        const std::string prefix = pub.endpoint() + " seq=0 ";
        if (verbose) {
            EXPECT_EQ(lines[0], prefix +
                                    "BlockStored hashes=3 block_hashes=1234605616436508552,"
                                    "17357386176853808775,42 tokens=6 parent=1234605616436508551 "
                                    "medium=GPU");
            EXPECT_EQ(lines[1], prefix + "BlockRemoved hashes=2 block_hashes=7,8 medium=-");
        } else {
            EXPECT_EQ(lines[0], prefix +
                                    "BlockStored hashes=3 first=1234605616436508552 tokens=6 "
                                    "parent=1234605616436508551 medium=GPU");
            EXPECT_EQ(lines[1], prefix + "BlockRemoved hashes=2 first=7 medium=-");
        }
        EXPECT_EQ(cli.wait(), 0) << cli.stderr_text();
    }
}

TEST(CliSubscribe, HashesAsStringsQuotesIntegerHashesAndParents) {
    for (const bool as_strings : {false, true}) {
        MockPublisher pub;
        std::vector<std::string> args = {kCli,           "subscribe",   "--endpoint",
                                         pub.endpoint(), "--no-replay", "--format",
                                         "json",         "--count",     "2"};
        if (as_strings)
            args.push_back("--hashes-as-strings");
        Subprocess cli(args);
        ASSERT_TRUE(pub.wait_for_subscriber(10s));
        pub.publish(batch_with_large_hashes());
        const auto lines = read_lines(cli, 2);
        ASSERT_EQ(lines.size(), 2U) << cli.stderr_text();
        if (as_strings) {
            EXPECT_NE(lines[0].find(R"("block_hashes":["1234605616436508552",)"
                                    R"("17357386176853808775","42"],)"
                                    R"("parent_block_hash":"1234605616436508551",)"),
                      std::string::npos)
                << lines[0];
            EXPECT_NE(lines[1].find(R"("block_hashes":["7","8"])"), std::string::npos) << lines[1];
        } else {
            EXPECT_NE(lines[0].find(R"("block_hashes":[1234605616436508552,)"
                                    R"(17357386176853808775,42],)"
                                    R"("parent_block_hash":1234605616436508551,)"),
                      std::string::npos)
                << lines[0];
            EXPECT_NE(lines[1].find(R"("block_hashes":[7,8])"), std::string::npos) << lines[1];
        }
        EXPECT_EQ(cli.wait(), 0) << cli.stderr_text();
    }
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
    // Rank 0 is the pod itself; other ranks are named pod#dp<rank>.
    EXPECT_NE(all.find("\"pod\":\"" + base + "\",\"seq\":0,\"ts\":1700000000.5,\"dp_rank\":0"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("\"pod\":\"" + base + "#dp1\",\"seq\":0,\"ts\":1700000000.5,\"dp_rank\":1"),
              std::string::npos)
        << all;
    EXPECT_EQ(cli.wait(), 0);
}

// Polls the CLI's stderr (a file) until it holds `needle`, with a deadline.
bool wait_for_stderr(const Subprocess& cli,
                     const std::string& needle,
                     std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (cli.stderr_text().find(needle) == std::string::npos) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

// A pods file in the test's temporary directory, rewritten in one step (rename) as an operator's
// tooling would.
class PodsFile {
public:
    PodsFile()
        : path_(::testing::TempDir() + "kvevents-pods-" + std::to_string(::getpid()) + "-" +
                std::to_string(counter_++) + ".jsonl") {}
    ~PodsFile() { std::remove(path_.c_str()); }
    void write(const std::string& text) const {
        const std::string temporary = path_ + ".new";
        std::ofstream(temporary) << text;
        std::rename(temporary.c_str(), path_.c_str());
    }
    const std::string& path() const { return path_; }

private:
    static inline int counter_ = 0;
    std::string path_;
};

std::string pod_line(const std::string& pod, const MockPublisher& pub) {
    return "{\"pod\": \"" + pod + "\", \"endpoint\": \"" + pub.endpoint() + "\", \"replay\": \"" +
           pub.replay_endpoint() + "\", \"model\": \"m\"}\n";
}

TEST(CliSubscribe, PodsFileIsFollowedAndReadAgainOnChangeAndOnSighup) {
    MockPublisher a;
    MockPublisher b;
    MockPublisher c;
    PodsFile file;
    file.write(pod_line("pod-a", a) +
               "{\"pod\": \"broken\", \"pod_ip\": \"10.9.9.9\", \"dp_size\": 0}\n" +
               pod_line("pod-b", b));
    Subprocess cli({kCli, "subscribe", "--pods-file", file.path(), "--format", "json"});
    ASSERT_TRUE(a.wait_for_subscriber(10s));
    ASSERT_TRUE(b.wait_for_subscriber(10s));
    EXPECT_TRUE(wait_for_stderr(cli, file.path() + ":2: "));
    EXPECT_NE(cli.stderr_text().find("dp_size"), std::string::npos) << cli.stderr_text();
    a.publish(test::one_store(1));
    b.publish(test::one_store(2));
    auto lines = read_lines(cli, 2);
    ASSERT_EQ(lines.size(), 2U);
    const std::string both = lines[0] + lines[1];
    EXPECT_NE(both.find("\"pod\":\"pod-a\""), std::string::npos) << both;
    EXPECT_NE(both.find("\"pod\":\"pod-b\""), std::string::npos) << both;

    // pod-b leaves and pod-c joins: the change is picked up without a signal.
    file.write(pod_line("pod-a", a) + pod_line("pod-c", c));
    ASSERT_TRUE(c.wait_for_subscriber(10s));
    ASSERT_TRUE(wait_for_stderr(cli, "replaced 0, removed 1"));
    b.publish(test::one_store(3));  // not followed any more
    c.publish(test::one_store(4));
    auto line = cli.read_line(10s);
    ASSERT_TRUE(line.has_value());
    EXPECT_NE(line->find("\"pod\":\"pod-c\""), std::string::npos) << *line;

    // SIGHUP reads the file again even if it looks unchanged.
    cli.signal(SIGHUP);
    ASSERT_TRUE(wait_for_stderr(cli, "publishers added 0, replaced 0, removed 0"));
    cli.signal(SIGTERM);
    EXPECT_EQ(cli.wait(), 0);
    const std::string err = cli.stderr_text();
    EXPECT_NE(err.find("stats pod-a: batches=1"), std::string::npos) << err;
    EXPECT_NE(err.find("stats pod-c: batches=1"), std::string::npos) << err;
    EXPECT_EQ(err.find("stats pod-b:"), std::string::npos) << err;
}

TEST(CliSubscribe, AMissingPodsFileIsAUsageError) {
    Subprocess cli({kCli, "subscribe", "--pods-file", "/nonexistent/pods.jsonl"});
    EXPECT_EQ(cli.wait(), 2);
    EXPECT_NE(cli.stderr_text().find("cannot read the pods file '/nonexistent/pods.jsonl'"),
              std::string::npos)
        << cli.stderr_text();
}

TEST(CliSubscribe, BindModeFollowsEachEnginesTopicAsItsOwnPod) {
    const std::string endpoint = test::unused_endpoints().live;
    Subprocess cli({kCli, "subscribe", "--endpoint", endpoint, "--bind", "--no-replay", "--format",
                    "json", "--count", "6"});
    MockPublisherOptions a_options = test::connecting_to(endpoint);
    a_options.topic = "kv@10.1.1.1@llama";
    MockPublisherOptions b_options = test::connecting_to(endpoint);
    b_options.topic = "kv@10.1.1.2@llama";
    MockPublisher a(a_options);
    MockPublisher b(b_options);
    ASSERT_TRUE(a.wait_for_subscriber(10s));
    ASSERT_TRUE(b.wait_for_subscriber(10s));
    for (int i = 0; i < 3; ++i) {
        a.publish(test::one_store(10 + static_cast<std::uint64_t>(i)));
        b.publish(test::one_store(20 + static_cast<std::uint64_t>(i)));
    }
    const auto lines = read_lines(cli, 6);
    ASSERT_EQ(lines.size(), 6U);
    std::map<std::string, std::vector<int>> seqs;
    const std::regex pod_seq(R"re("pod":"([^"]+)","seq":([0-9]+))re");
    for (const auto& l : lines) {
        std::smatch m;
        ASSERT_TRUE(std::regex_search(l, m, pod_seq)) << l;
        seqs[m[1]].push_back(std::stoi(m[2]));
    }
    EXPECT_EQ(seqs["10.1.1.1"], (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(seqs["10.1.1.2"], (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(cli.wait(), 0);
    EXPECT_EQ(cli.stderr_text().find("publisher restarted"), std::string::npos)
        << cli.stderr_text();
    EXPECT_EQ(cli.stderr_text().find("lost for good"), std::string::npos) << cli.stderr_text();
    EXPECT_NE(cli.stderr_text().find("stats 10.1.1.1: batches=3"), std::string::npos)
        << cli.stderr_text();
}

#ifdef KVEVENTS_CLI_METRICS
TEST(CliSubscribe, MetricsPortServesEveryPublishersSeries) {
    MockPublisher pub;
    Subprocess cli({kCli, "subscribe", "--pod-ip", "127.0.0.1", "--endpoint", pub.endpoint(),
                    "--no-replay", "--format", "none", "--metrics-port", "0", "--metrics-address",
                    "127.0.0.1"});
    ASSERT_TRUE(pub.wait_for_subscriber(10s));
    ASSERT_TRUE(wait_for_stderr(cli, "/metrics\n"));
    std::smatch m;
    const std::string err = cli.stderr_text();
    ASSERT_TRUE(std::regex_search(err, m, std::regex("http://127.0.0.1:([0-9]+)/metrics")));
    const int port = std::stoi(m[1]);
    pub.publish(test::one_store(1));
    pub.publish(test::one_store(2));
    const std::string series =
        "kvevents_batches_total{model=\"\",pod=\"" + pub.endpoint() + "\",rank=\"0\"}";
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::optional<double> batches;
    while (std::chrono::steady_clock::now() < deadline && batches != 2.0) {
        batches = test::value_of(test::parse_samples(test::scrape(port)), series);
        if (batches != 2.0)
            std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(batches, 2.0);
    const auto samples = test::parse_samples(test::scrape(port));
    // The --pod-ip publisher has nothing on its ports: it is listed as connecting.
    EXPECT_EQ(test::value_of(samples,
                             "kvevents_connection_state{model=\"\",pod=\"127.0.0.1\","
                             "rank=\"0\",state=\"connecting\"}"),
              1.0);
    cli.signal(SIGINT);
    EXPECT_EQ(cli.wait(), 0);
}
#endif

TEST(CliDemo, RunsByItselfAndVerifiesExactlyOnceDelivery) {
    Subprocess cli({kCli, "demo", "--quiet"});
    EXPECT_EQ(cli.wait(30s), 0) << cli.stderr_text();
    const std::string err = cli.stderr_text();
    EXPECT_NE(err.find("demo: OK: every batch exactly once, in order"), std::string::npos) << err;
    EXPECT_NE(err.find("0 lost, 1 restart seen"), std::string::npos) << err;
    // Then the query side: hashes checked, the index followed the engines, the prompt routed.
    EXPECT_NE(err.find("route: hashing check engine-b: hashes match (40 blocks checked)"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("route:   engine-b: GPU 32, +CPU 40, any tier 40"), std::string::npos)
        << err;
    EXPECT_NE(err.find("route: send it to engine-b"), std::string::npos) << err;
    EXPECT_NE(err.find("route: OK"), std::string::npos) << err;
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

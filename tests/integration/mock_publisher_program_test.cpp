// kvevents-mock-publisher run as a separate process, as a gateway's test in any language runs it,
// followed by a ZmqClient and by kvevents-cli.

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <kvevents/zmq_client.h>

#include "recording_handler.h"
#include "subprocess.h"

namespace kvevents {
namespace {

using namespace std::chrono_literals;
using test::RecordingHandler;
using test::Subprocess;

const std::string kProgram = KVEVENTS_MOCK_PUBLISHER_PATH;
const std::string kCli = KVEVENTS_CLI_PATH;

// A string or number field of one of the program's flat JSON lines; nullopt when absent.
std::optional<std::string> field(const std::string& line, const std::string& key) {
    const std::regex pattern("\"" + key + "\":(\"([^\"]*)\"|[^,}]*)");
    std::smatch m;
    if (!std::regex_search(line, m, pattern))
        return std::nullopt;
    return m[2].matched ? m[2].str() : m[1].str();
}

// The next stdout line whose "event" is `event`, skipping others; "" when none came in time.
std::string next_report(Subprocess& program, const std::string& event) {
    while (auto line = program.read_line(10s)) {
        if (field(*line, "event") == event)
            return *line;
    }
    return "";
}

// The program on loopback ports it picks, with its endpoints read from its ready line.
struct RunningPublisher {
    std::unique_ptr<Subprocess> process;
    std::string endpoint;
    std::string replay_endpoint;
};

RunningPublisher start_publisher(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {kProgram, "--endpoint", "tcp://127.0.0.1:*", "--replay",
                                     "tcp://127.0.0.1:*"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    RunningPublisher p{std::make_unique<Subprocess>(argv), "", ""};
    const std::string ready = next_report(*p.process, "ready");
    EXPECT_FALSE(ready.empty()) << p.process->stderr_text();
    p.endpoint = field(ready, "endpoint").value_or("");
    p.replay_endpoint = field(ready, "replay_endpoint").value_or("");
    return p;
}

ClientOptions follow(const RunningPublisher& p) {
    ClientOptions options;
    options.pod_key = "mock";
    options.endpoint = p.endpoint;
    options.replay_endpoint = p.replay_endpoint;
    options.replay_idle_timeout = 500ms;
    return options;
}

bool nothing_lost(const RecordingHandler& h) {
    return h.count(StreamNotice::Kind::kUnrecoverableGap) == 0 &&
           h.count(StreamNotice::Kind::kContinuityLost) == 0;
}

TEST(MockPublisherProgram, PrintsBoundEndpointsAndEveryBatchArrivesInOrder) {
    RunningPublisher pub = start_publisher(
        {"--rate", "500", "--count", "40", "--events-per-batch", "2", "--topic", "kv@pod-a@model"});
    EXPECT_NE(pub.endpoint.find("tcp://127.0.0.1:"), std::string::npos);
    EXPECT_EQ(pub.endpoint.find('*'), std::string::npos);
    RecordingHandler handler;
    ZmqClient client(follow(pub), handler);
    client.Start();
    ASSERT_TRUE(handler.wait_for_batches(40)) << handler.batch_count();
    EXPECT_EQ(handler.sequences(), test::range(0, 39));
    for (const ReceivedBatch& b : handler.batches()) {
        EXPECT_EQ(b.batch.events.size(), 2U);
        EXPECT_EQ(b.topic, "kv@pod-a@model");
    }
    EXPECT_TRUE(nothing_lost(handler));
    const std::string finished = next_report(*pub.process, "finished");
    EXPECT_EQ(field(finished, "batches"), "40") << finished;
    EXPECT_EQ(field(finished, "events"), "80") << finished;

    pub.process->signal(SIGTERM);
    EXPECT_EQ(field(next_report(*pub.process, "stopped"), "batches"), "40");
    EXPECT_EQ(pub.process->wait(), 0) << pub.process->stderr_text();
}

TEST(MockPublisherProgram, DroppedLiveBatchesAreHealedFromReplay) {
    // Waiting for the subscriber makes every batch a live one, so the drops are gaps it sees.
    RunningPublisher pub = start_publisher(
        {"--rate", "200", "--count", "61", "--drop-every", "3", "--wait-for-subscriber"});
    RecordingHandler handler;
    ZmqClient client(follow(pub), handler);
    client.Start();
    ASSERT_TRUE(handler.wait_for_batches(61)) << handler.batch_count();
    EXPECT_EQ(handler.sequences(), test::range(0, 60));
    EXPECT_TRUE(nothing_lost(handler));
    const ClientStats stats = client.stats();
    EXPECT_GE(stats.gaps_detected, 1U);
    EXPECT_GE(stats.batches_recovered, 20U);
    EXPECT_EQ(stats.batches_unrecoverable, 0U);
    EXPECT_EQ(field(next_report(*pub.process, "finished"), "not_sent_live"), "20");
}

TEST(MockPublisherProgram, SighupAndSigusr1RestartTheEngine) {
    RunningPublisher pub = start_publisher({"--rate", "200"});
    RecordingHandler handler;
    ZmqClient client(follow(pub), handler);
    client.Start();
    ASSERT_TRUE(handler.wait_for_batches(10));

    pub.process->signal(SIGHUP);
    const std::string restarted = next_report(*pub.process, "restarted");
    EXPECT_EQ(field(restarted, "incarnation"), "2") << restarted;
    EXPECT_EQ(field(restarted, "cause"), "SIGHUP") << restarted;
    ASSERT_TRUE(handler.wait_for_notice(StreamNotice::Kind::kPublisherRestarted));
    const std::size_t before_second = handler.batch_count();
    ASSERT_TRUE(handler.wait_for_batches(before_second + 5));

    pub.process->signal(SIGUSR1);
    EXPECT_EQ(field(next_report(*pub.process, "restarted"), "cause"), "SIGUSR1");
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        return h.count(StreamNotice::Kind::kPublisherRestarted) == 2;
    }));
    // After each restart notice the new incarnation's batches come from sequence 0.
    const std::vector<std::string> log = handler.log();
    for (std::size_t i = 0; i + 1 < log.size(); ++i) {
        if (log[i] == "restart") {
            EXPECT_EQ(log[i + 1], "batch 0");
        }
    }
    EXPECT_TRUE(nothing_lost(handler));

    pub.process->signal(SIGINT);
    EXPECT_EQ(field(next_report(*pub.process, "stopped"), "restarts"), "2");
    EXPECT_EQ(pub.process->wait(), 0) << pub.process->stderr_text();
}

TEST(MockPublisherProgram, RestartEveryNBatchesStartsEachIncarnationAtZero) {
    RunningPublisher pub =
        start_publisher({"--rate", "500", "--count", "40", "--restart-every", "15"});
    RecordingHandler handler;
    ZmqClient client(follow(pub), handler);
    client.Start();
    // 15 + 15 + 10 batches; only the last incarnation is certain to be seen whole (the client
    // may start after the first restart, and replay holds only the current incarnation).
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        const std::vector<std::uint64_t> seqs = h.sequences();
        return seqs.size() >= 10 && seqs.back() == 9;
    })) << handler.batch_count();
    const std::vector<std::uint64_t> seqs = handler.sequences();
    EXPECT_EQ(std::vector<std::uint64_t>(seqs.end() - 10, seqs.end()), test::range(0, 9));
    EXPECT_EQ(field(next_report(*pub.process, "finished"), "restarts"), "2");
}

TEST(MockPublisherProgram, RestartReopensRebindsTheSameEndpoints) {
    RunningPublisher pub = start_publisher({"--rate", "100", "--restart-reopens"});
    RecordingHandler handler;
    ZmqClient client(follow(pub), handler);
    client.Start();
    ASSERT_TRUE(handler.wait_for_batches(5));
    // Rebinding a port just closed can find it still taken for a moment; the program retries.
    pub.process->signal(SIGHUP);
    EXPECT_EQ(field(next_report(*pub.process, "restarted"), "incarnation"), "2");
    pub.process->signal(SIGHUP);
    EXPECT_EQ(field(next_report(*pub.process, "restarted"), "incarnation"), "3");
    // The client reconnects to the same ports; when it cannot tell a restart from a gap it says
    // continuity was lost, which a gateway treats as a restart.
    ASSERT_TRUE(handler.wait_for([](const RecordingHandler& h) {
        return h.count(StreamNotice::Kind::kPublisherRestarted) +
                   h.count(StreamNotice::Kind::kContinuityLost) >=
               1;
    }));
    EXPECT_EQ(handler.count(StreamNotice::Kind::kUnrecoverableGap), 0U);
    pub.process->signal(SIGTERM);
    EXPECT_EQ(pub.process->wait(), 0) << pub.process->stderr_text();
}

// Every payload layout reaches the client decoded, with its topic and rank.
class MockPublisherEra : public ::testing::TestWithParam<const char*> {};

TEST_P(MockPublisherEra, BatchesDecode) {
    const std::string era = GetParam();
    RunningPublisher pub = start_publisher({"--era", era, "--rate", "1000", "--count", "3",
                                            "--events-per-batch", "2", "--dp-rank", "3"});
    RecordingHandler handler;
    ZmqClient client(follow(pub), handler);
    client.Start();
    ASSERT_TRUE(handler.wait_for_batches(3));
    EXPECT_EQ(handler.sequences(), test::range(0, 2));
    EXPECT_EQ(client.stats().decode_errors, 0U);
    for (const ReceivedBatch& b : handler.batches()) {
        EXPECT_EQ(b.batch.events.size(), 2U);
        // vLLM v0.9's envelope has no rank.
        EXPECT_EQ(b.batch.data_parallel_rank,
                  era == "v0.9" ? std::nullopt : std::optional<std::int64_t>(3));
    }
}

INSTANTIATE_TEST_SUITE_P(EveryEra,
                         MockPublisherEra,
                         ::testing::Values("v0.9",
                                           "data-parallel",
                                           "medium",
                                           "lora-name",
                                           "extra-keys",
                                           "group-idx",
                                           "kv-cache-spec",
                                           "sglang",
                                           "map-events"),
                         [](const ::testing::TestParamInfo<const char*>& era) {
                             std::string name = era.param;
                             for (char& c : name) {
                                 if (c == '.' || c == '-')
                                     c = '_';
                             }
                             return name;
                         });

TEST(MockPublisherProgram, KveventsCliFollowsItWithoutLoss) {
    RunningPublisher pub = start_publisher({"--rate", "300", "--count", "30", "--events-per-batch",
                                            "1", "--drop-every", "4", "--wait-for-subscriber"});
    Subprocess cli({kCli, "subscribe", "--endpoint", pub.endpoint, "--replay", pub.replay_endpoint,
                    "--format", "json", "--count", "30"});
    std::vector<std::string> seqs;
    while (seqs.size() < 30) {
        const auto line = cli.read_line(10s);
        if (!line)
            break;
        seqs.push_back(field(*line, "seq").value_or("?"));
    }
    ASSERT_EQ(seqs.size(), 30U) << cli.stderr_text();
    for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], std::to_string(i));
    EXPECT_EQ(cli.wait(), 0);
    EXPECT_NE(cli.stderr_text().find("lost=0"), std::string::npos) << cli.stderr_text();
}

TEST(MockPublisherProgram, NoReplayLeavesTheReplayEndpointNull) {
    Subprocess program({kProgram, "--endpoint", "tcp://127.0.0.1:*", "--no-replay"});
    const std::string ready = next_report(program, "ready");
    EXPECT_EQ(field(ready, "replay_endpoint"), "null") << ready;
    program.signal(SIGTERM);
    EXPECT_EQ(program.wait(), 0);
}

TEST(MockPublisherProgram, AnEndpointInUseIsAnErrorNamingIt) {
    RunningPublisher first = start_publisher({});
    Subprocess second({kProgram, "--endpoint", first.endpoint, "--no-replay"});
    EXPECT_EQ(second.wait(), 2);
    EXPECT_NE(second.stderr_text().find("cannot open " + first.endpoint), std::string::npos)
        << second.stderr_text();
}

struct UsageCase {
    std::vector<std::string> args;
    std::string message;
};

TEST(MockPublisherProgram, UsageErrorsNameTheFlagAndExitWithStatus2) {
    const std::vector<UsageCase> cases = {
        {{"--rate", "fast"}, "--rate"},
        {{"--rate", "-1"}, "--rate"},
        {{"--era", "v0.7"}, "--era"},
        {{"--count", "0"}, "--count"},
        {{"--drop-rate", "1.5"}, "--drop-rate"},
        {{"--drop-every", "1"}, "--drop-every"},
        {{"--endpoint", "http://x:1"}, "must start with tcp:// or ipc://"},
        {{"--no-replay", "--replay-silent"}, "--no-replay"},
        {{"--connect", "--endpoint", "tcp://127.0.0.1:*"}, "--connect"},
        {{"--frobnicate"}, "--frobnicate"},
    };
    for (const UsageCase& c : cases) {
        std::vector<std::string> argv = {kProgram};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        Subprocess program(argv);
        EXPECT_EQ(program.wait(), 2) << c.args[0];
        const std::string err = program.stderr_text();
        EXPECT_NE(err.find(c.message), std::string::npos) << err;
        EXPECT_EQ(err.rfind("kvevents-mock-publisher: ", 0), 0U) << err;
    }
}

TEST(MockPublisherProgram, HelpListsTheFlagsAndExitsWith0) {
    Subprocess program({kProgram, "--help"});
    std::string help;
    while (auto line = program.read_line(10s)) help += *line + "\n";
    EXPECT_EQ(program.wait(), 0);
    for (const char* flag : {"--endpoint", "--replay", "--era", "--rate", "--events-per-batch",
                             "--count", "--duration", "--drop-every", "--restart-every"}) {
        EXPECT_NE(help.find(flag), std::string::npos) << flag << " missing from\n" << help;
    }
}

}  // namespace
}  // namespace kvevents

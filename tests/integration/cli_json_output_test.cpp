// Every line kvevents-cli decode prints is strict JSON (RFC 8259), whatever it is given: the
// decoder's fuzz corpus (hostile payloads included) and the malformed and non-UTF-8 payloads of
// the CLI tests, with integer hashes as numbers and as strings.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "strict_json.h"
#include "subprocess.h"

namespace kvevents {
namespace {

using namespace std::chrono_literals;
using test::Subprocess;

const std::string kCli = KVEVENTS_CLI_PATH;
const std::filesystem::path kCorpus = KVEVENTS_FUZZ_CORPUS_DIR;
const std::filesystem::path kCliData = KVEVENTS_CLI_DATA_DIR;

std::vector<std::filesystem::path> corpus_files() {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(kCorpus))
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

struct DecodeRun {
    std::vector<std::string> lines;
    int status = -1;
    std::string stderr_text;
};

DecodeRun decode(std::vector<std::string> args) {
    args.insert(args.begin(), {kCli, "decode"});
    Subprocess cli(args);
    DecodeRun run;
    while (auto line = cli.read_line(20s)) run.lines.push_back(*line);
    run.status = cli.wait();
    run.stderr_text = cli.stderr_text();
    return run;
}

// Checks every line of a decode run; returns how many there were.
std::size_t expect_strict_json_lines(const std::vector<std::string>& args) {
    const DecodeRun run = decode(args);
    const std::string what = ::testing::PrintToString(args);
    // 0: all decoded; 1: some payload failed (reported on stderr). Anything else is a crash or
    // a usage error.
    EXPECT_TRUE(run.status == 0 || run.status == 1) << what << " exited " << run.status << "\n"
                                                    << run.stderr_text;
    for (std::size_t i = 0; i < run.lines.size(); ++i) {
        const auto error = test::strict_json_error(run.lines[i]);
        EXPECT_EQ(error, std::nullopt) << what << " line " << i + 1 << ": " << run.lines[i];
    }
    return run.lines.size();
}

TEST(CliJsonOutput, EveryLineDecodedFromTheFuzzCorpusIsStrictJson) {
    const auto files = corpus_files();
    ASSERT_GE(files.size(), 20U) << kCorpus;
    std::size_t lines = 0;
    for (const auto& file : files) {
        lines += expect_strict_json_lines({"--raw", file.string()});
        lines += expect_strict_json_lines({"--raw", "--hashes-as-strings", file.string()});
    }
    EXPECT_GT(lines, 100U);  // the corpus decodes to many events: the check has something to do
}

TEST(CliJsonOutput, MalformedAndNonUtf8PayloadsStillGiveStrictJson) {
    for (const char* name : {"bad_payloads.hex", "invalid_utf8.hex"}) {
        const std::string file = (kCliData / name).string();
        EXPECT_GT(expect_strict_json_lines({file}), 0U) << name;
        EXPECT_GT(expect_strict_json_lines({"--hashes-as-strings", file}), 0U) << name;
    }
}

// Invalid UTF-8 in a string is replaced by U+FFFD, one per offending byte, as README says.
TEST(CliJsonOutput, InvalidUtf8BecomesTheReplacementCharacter) {
    const DecodeRun run = decode({(kCliData / "invalid_utf8.hex").string()});
    ASSERT_EQ(run.status, 0) << run.stderr_text;
    ASSERT_FALSE(run.lines.empty());
    EXPECT_NE(run.lines.front().find(R"("medium":"\ufffd\ufffd")"), std::string::npos)
        << run.lines.front();
}

// A binary payload given as hex lines (no --raw) is refused with a usage error that names the
// file and echoes none of its bytes.
TEST(CliJsonOutput, BinaryInputWithoutRawIsAClearUsageError) {
    for (const auto& file : corpus_files()) {
        const DecodeRun run = decode({file.string()});
        EXPECT_EQ(run.status, 2) << file;
        EXPECT_TRUE(run.lines.empty()) << file;
        EXPECT_EQ(run.stderr_text, "kvevents-cli decode: " + file.string() +
                                       " looks binary (NUL or non-text bytes on line 1); pass "
                                       "--raw for a binary payload\n");
    }
}

}  // namespace
}  // namespace kvevents

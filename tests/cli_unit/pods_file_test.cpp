// The pods file's line format and the strict JSON object reader under it.

#include "pods_file.h"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "json_object_reader.h"

namespace kvevents::cli {
namespace {

std::string error_of(const std::string& line) {
    try {
        parse_pod_line(line);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no error";
}

TEST(PodsFile, ReadsBothFormsOfALine) {
    const PodEntry a =
        parse_pod_line(R"({"pod": "pod-a", "pod_ip": "10.0.0.7", "dp_size": 2, "model": "m"})");
    EXPECT_EQ(a.pod, "pod-a");
    EXPECT_EQ(a.pod_ip, "10.0.0.7");
    EXPECT_EQ(a.dp_size, 2);
    EXPECT_EQ(a.model, "m");
    const PodEntry b = parse_pod_line(
        R"({"pod":"pod-b","endpoint":"tcp://10.0.0.8:5557","replay":"tcp://10.0.0.8:5558"})");
    EXPECT_EQ(b.endpoint, "tcp://10.0.0.8:5557");
    EXPECT_EQ(b.replay, "tcp://10.0.0.8:5558");
    EXPECT_EQ(b.dp_size, 1);
    EXPECT_EQ(parse_pod_line(R"({"pod":"caf\u00e9 \ud83d\ude00","pod_ip":"h"})").pod,
              "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST(PodsFile, EveryMistakeIsNamed) {
    EXPECT_EQ(error_of(R"({"pod_ip": "h"})"), "\"pod\" is missing or empty");
    EXPECT_EQ(error_of(R"({"pod": "p"})"), "give exactly one of \"pod_ip\" and \"endpoint\"");
    EXPECT_EQ(error_of(R"({"pod": "p", "pod_ip": "h", "endpoint": "tcp://h:1"})"),
              "give exactly one of \"pod_ip\" and \"endpoint\"");
    EXPECT_NE(error_of(R"({"pod": "p", "pod_ip": "h", "replay": "tcp://h:2"})").find("\"replay\""),
              std::string::npos);
    EXPECT_EQ(error_of(R"({"pod": "p", "pod_ip": "h", "dp_size": 1.5})"),
              "\"dp_size\" must be a whole number from 1 to 1024");
    EXPECT_EQ(error_of(R"({"pod": "p", "pod_ip": "h", "dp_size": "2"})"),
              "\"dp_size\" must be a whole number from 1 to 1024");
    EXPECT_EQ(error_of(R"({"pod": 7, "pod_ip": "h"})"), "\"pod\" must be a string");
    EXPECT_NE(error_of(R"({"pod": "p", "pod_ip": "h", "port": 1})").find("unknown key \"port\""),
              std::string::npos);
    EXPECT_EQ(error_of(R"({"pod": "p", "pod": "q", "pod_ip": "h"})"),
              "column 14: the key appears twice");
    EXPECT_EQ(error_of(R"({"pod": "p", "pod_ip": ["h"]})"),
              "column 24: values must be strings, numbers, booleans or null");
    EXPECT_EQ(error_of(R"({"pod": "p" "pod_ip": "h"})"), "column 13: expected '}'");
    EXPECT_EQ(error_of(R"({"pod": "p"} x)"), "column 14: unexpected text after the object");
    EXPECT_EQ(error_of(R"({"pod": "p)"), "column 11: unterminated string");
    EXPECT_EQ(error_of(R"({"pod": "\x"})"), "column 11: unknown escape");
    EXPECT_EQ(error_of(R"({"pod": "\ud800"})"), "column 16: unpaired surrogate in a \\u escape");
    EXPECT_EQ(error_of(R"({"n": 01})"), "column 8: expected '}'");
    EXPECT_EQ(error_of(R"({"n": -})"), "column 7: malformed number");
    EXPECT_EQ(error_of(R"({"n": 1e999})"), "column 7: number out of range");
    EXPECT_EQ(error_of("[]"), "column 1: expected '{'");
}

TEST(JsonObjectReader, ReadsScalarsOfEveryKind) {
    const JsonObject o = read_flat_json_object(
        " {\"s\": \"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\", \"t\": true, \"f\": false, \"z\": null, "
        "\"n\": -12.5e1} ");
    EXPECT_EQ(std::get<std::string>(o.at("s")), "a\"b\\c/\b\f\n\r\t");
    EXPECT_TRUE(std::get<bool>(o.at("t")));
    EXPECT_FALSE(std::get<bool>(o.at("f")));
    EXPECT_TRUE(std::holds_alternative<std::nullptr_t>(o.at("z")));
    EXPECT_EQ(std::get<double>(o.at("n")), -125.0);
    EXPECT_TRUE(read_flat_json_object("{}").empty());
}

}  // namespace
}  // namespace kvevents::cli

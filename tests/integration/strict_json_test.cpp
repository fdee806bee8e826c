// The strict JSON checker that the CLI's output is held to must itself reject what RFC 8259 does.

#include "strict_json.h"

#include <string>

#include <gtest/gtest.h>

namespace kvevents::test {
namespace {

TEST(StrictJson, AcceptsValidJson) {
    for (const std::string text : {
             R"({"a":1,"b":[true,false,null],"c":{"d":"e"}})",
             R"([])",
             R"({})",
             R"( [ 1 , 2 ] )",
             R"("")",
             R"(0)",
             R"(-0)",
             R"(-12.5e+300)",
             R"(0.5E-3)",
             R"(18446744073709551615)",
             R"("\" \\ \/ \b \f \n \r \t \u0000 \u00e9 \ufffd")",
             R"("\ud83d\ude00")",                              // a surrogate pair
             "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",  // 2-, 3- and 4-byte UTF-8
             "{\"a\":\n\t1\r\n}",
         }) {
        EXPECT_EQ(strict_json_error(text), std::nullopt) << text;
    }
}

TEST(StrictJson, RejectsWhatTheGrammarDoesNotAllow) {
    for (const std::string& text : {
             std::string(""),
             std::string("   "),
             std::string("{} x"),                  // trailing garbage
             std::string("1 2"),                   // two values
             std::string("{\"a\":1,}"),            // trailing comma
             std::string("[1,]"),                  //
             std::string("{a:1}"),                 // unquoted key
             std::string("{'a':1}"),               // single quotes
             std::string("{\"a\" 1}"),             // no colon
             std::string("[1 2]"),                 // no comma
             std::string("[1"),                    // unterminated
             std::string("\"abc"),                 //
             std::string("01"),                    // leading zero
             std::string("-"),                     //
             std::string("1."),                    //
             std::string(".5"),                    //
             std::string("+1"),                    //
             std::string("1e"),                    //
             std::string("1e+"),                   //
             std::string("NaN"),                   //
             std::string("Infinity"),              //
             std::string("-Infinity"),             //
             std::string("tru"),                   //
             std::string("nul"),                   //
             std::string("\"\\x41\""),             // unknown escape
             std::string("\"\\u12\""),             // short \u
             std::string("\"\\u12g4\""),           //
             std::string("\"\\ud800\""),           // lone high surrogate
             std::string("\"\\ud800\\u0041\""),    // high surrogate, then not a low one
             std::string("\"\\udc00\""),           // lone low surrogate
             std::string("\"a\tb\""),              // raw control character
             std::string("\"a\nb\""),              //
             std::string("\"\0\"", 3),             // raw NUL
             std::string("\"\xff\""),              // not UTF-8
             std::string("\"\x80\""),              // a lone continuation byte
             std::string("\"\xc3\""),              // truncated sequence
             std::string("\"\xc0\xaf\""),          // overlong
             std::string("\"\xe0\x80\xaf\""),      // overlong
             std::string("\"\xed\xa0\x80\""),      // an encoded surrogate
             std::string("\"\xf4\x90\x80\x80\""),  // above U+10FFFF
             std::string(2000, '['),               // deeper than any output
         }) {
        EXPECT_NE(strict_json_error(text), std::nullopt) << text;
    }
}

TEST(StrictJson, SaysWhereTheTextGoesWrong) {
    EXPECT_EQ(strict_json_error("[1,2,]"), "not the start of a value at byte 5");
}

}  // namespace
}  // namespace kvevents::test

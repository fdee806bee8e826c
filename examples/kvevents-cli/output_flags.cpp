#include "output_flags.h"

#include <CLI/CLI.hpp>

namespace kvevents::cli {
namespace {

constexpr const char* kGroup = "Output";

}  // namespace

CLI::Option* add_hash_style_flag(CLI::App& command, HashStyle& style) {
    return command
        .add_flag_callback(
            "--hashes-as-strings", [&style] { style = HashStyle::kString; },
            "integer block hashes (and parent hashes) as decimal JSON strings, for readers that\n"
            "round numbers above 2^53 (jq 1.6, JavaScript's JSON.parse)")
        ->group(kGroup);
}

void add_output_flags(CLI::App& command, PrinterOptions& options) {
    command
        .add_option_function<std::string>(
            "--format",
            [&options](const std::string& value) {
                if (value == "text") {
                    options.format = OutputFormat::kText;
                } else if (value == "json") {
                    options.format = OutputFormat::kJson;
                } else if (value == "none") {
                    options.format = OutputFormat::kNone;
                } else {
                    throw UsageError("--format must be text, json or none, got '" + value + "'");
                }
            },
            "text (default), json, or none: no events, only notices and statistics")
        ->type_name("FORMAT")
        ->group(kGroup);
    command
        .add_flag("--notices", options.json_notices,
                  "with --format json: stream notices as JSON lines on stdout")
        ->group(kGroup);
    command
        .add_flag("--verbose", options.verbose,
                  "with --format text: every block hash of an event, not only the first")
        ->group(kGroup);
    add_hash_style_flag(command, options.hash_style)
        ->description(
            "with --format json: integer block hashes (and parent hashes) as decimal JSON "
            "strings,\n"
            "for readers that round numbers above 2^53 (jq 1.6, JavaScript's JSON.parse)");
}

void check_output_flags(const PrinterOptions& options) {
    if (options.json_notices && options.format != OutputFormat::kJson)
        throw UsageError("--notices needs --format json");
    if (options.hash_style == HashStyle::kString && options.format != OutputFormat::kJson)
        throw UsageError("--hashes-as-strings needs --format json");
    if (options.verbose && options.format != OutputFormat::kText)
        throw UsageError("--verbose needs --format text");
}

}  // namespace kvevents::cli

#include "bench_flags.h"

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

namespace kvevents::bench {
namespace {

[[noreturn]] void usage_error(const CLI::App& app, const std::string& message) {
    std::cerr << app.get_name() << ": " << message << " (see " << app.get_name() << " --help)\n";
    std::exit(2);
}

}  // namespace

std::vector<std::string> parse_flags_or_exit(CLI::App& app,
                                             int argc,
                                             char** argv,
                                             bool pass_benchmark_flags) {
    app.allow_extras();  // reported below, in the same words as every other usage error
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        std::exit(app.exit(e));  // --help
    } catch (const CLI::ParseError& e) {
        usage_error(app, e.what());
    }
    std::vector<std::string> passed;
    for (const std::string& arg : app.remaining()) {
        if (pass_benchmark_flags && arg.rfind("--benchmark_", 0) == 0) {
            passed.push_back(arg);
        } else if (arg.size() > 1 && arg[0] == '-') {
            usage_error(app, "unknown option '" + arg.substr(0, arg.find('=')) + "'");
        } else {
            usage_error(app, "unexpected argument '" + arg + "'");
        }
    }
    return passed;
}

}  // namespace kvevents::bench

// kvevents-mock-publisher: a mock vLLM KV-event publisher in a process of its own, for testing
// subscribers in any language against it.

#include <iostream>
#include <variant>

#include "publisher_run.h"
#include "publisher_settings.h"

int main(int argc, char** argv) {
    const auto parsed = kvevents::cli::parse_publisher_flags(argc, argv, std::cout, std::cerr);
    if (const auto* exit_now = std::get_if<kvevents::cli::ExitNow>(&parsed))
        return exit_now->status;
    return kvevents::cli::run_publisher(std::get<kvevents::cli::PublisherSettings>(parsed),
                                        std::cout, std::cerr);
}

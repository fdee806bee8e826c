#pragma once

#include <iosfwd>
#include <memory>

#include <spdlog/fwd.h>

namespace kvevents::cli {

/// The query side of the demo: mock engines publish blocks hashed as vLLM hashes them, a Fleet
/// feeds a PrefixIndex (through a HashingCheck), and a prompt is routed to the pod holding the
/// most of it. Reports on `out`; returns whether every step did what it should.
bool run_routing_demo(std::ostream& out, const std::shared_ptr<spdlog::logger>& logger);

}  // namespace kvevents::cli

#pragma once

// The benchmark process's own memory, from /proc.

namespace kvevents::bench {

/// Resident memory once the allocator has returned what is free: at a quiescent moment (nothing
/// in flight) this is what the process really holds, so a leak shows and allocator slack does not.
double rss_mib();

/// The most resident memory since the process started or since reset_peak_rss().
double peak_rss_mib();
void reset_peak_rss();

}  // namespace kvevents::bench

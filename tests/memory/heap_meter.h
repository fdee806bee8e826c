#pragma once

// Counts the bytes live through operator new in the whole process, keeps their peak, and can
// refuse large requests past a limit (a memory limit that only the code under test reaches).
// Linked into one test binary only: it replaces the global operator new and delete.

#include <cstddef>

namespace kvevents::test::heap_meter {

/// Bytes allocated through operator new and not yet deleted, as the allocator sized them
/// (malloc_usable_size).
std::size_t live();
/// The highest live() since the last reset_peak().
std::size_t peak();
void reset_peak();

/// Requests of at least `min_request` bytes, made on a thread that called limit_this_thread(),
/// that would take live() past `limit` throw std::bad_alloc. Other requests always succeed.
/// 0 lifts the limit.
void set_limit(std::size_t limit, std::size_t min_request = 4096);
/// Puts the calling thread (a client's loop, from inside its handler) under the limit, or takes
/// it out again.
void limit_this_thread(bool limited = true);

}  // namespace kvevents::test::heap_meter

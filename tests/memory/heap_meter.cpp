#include "heap_meter.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include <malloc.h>

namespace kvevents::test::heap_meter {
namespace {

std::atomic<std::size_t> g_live{0};
std::atomic<std::size_t> g_peak{0};
std::atomic<std::size_t> g_limit{0};
std::atomic<std::size_t> g_min_request{0};
thread_local bool t_limited = false;

// Blocks are counted at the size the allocator gives (malloc_usable_size: the request rounded up
// to the allocator's granule, the exact request under ASan), so no header is added in front and
// ASan's redzones stay where they are.
void* allocate(std::size_t size, bool throws) {
    const std::size_t limit = g_limit.load(std::memory_order_relaxed);
    if (limit != 0 && t_limited && size >= g_min_request.load(std::memory_order_relaxed) &&
        g_live.load(std::memory_order_relaxed) + size > limit) {
        if (throws)
            throw std::bad_alloc();
        return nullptr;
    }
    void* block = std::malloc(size == 0 ? 1 : size);
    if (block == nullptr) {
        if (throws)
            throw std::bad_alloc();
        return nullptr;
    }
    const std::size_t got = malloc_usable_size(block);
    const std::size_t now = g_live.fetch_add(got, std::memory_order_relaxed) + got;
    std::size_t seen = g_peak.load(std::memory_order_relaxed);
    while (now > seen && !g_peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
    return block;
}

void release(void* ptr) noexcept {
    if (ptr == nullptr)
        return;
    g_live.fetch_sub(malloc_usable_size(ptr), std::memory_order_relaxed);
    std::free(ptr);
}

}  // namespace

std::size_t live() {
    return g_live.load();
}

std::size_t peak() {
    return g_peak.load();
}

void reset_peak() {
    g_peak.store(g_live.load());
}

void limit_this_thread(bool limited) {
    t_limited = limited;
}

void set_limit(std::size_t limit, std::size_t min_request) {
    g_min_request.store(min_request);
    g_limit.store(limit);
}

}  // namespace kvevents::test::heap_meter

using kvevents::test::heap_meter::allocate;
using kvevents::test::heap_meter::release;

void* operator new(std::size_t size) {
    return allocate(size, true);
}
void* operator new[](std::size_t size) {
    return allocate(size, true);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    return allocate(size, false);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    return allocate(size, false);
}
void operator delete(void* ptr) noexcept {
    release(ptr);
}
void operator delete[](void* ptr) noexcept {
    release(ptr);
}
void operator delete(void* ptr, std::size_t) noexcept {
    release(ptr);
}
void operator delete[](void* ptr, std::size_t) noexcept {
    release(ptr);
}
void operator delete(void* ptr, const std::nothrow_t&) noexcept {
    release(ptr);
}
void operator delete[](void* ptr, const std::nothrow_t&) noexcept {
    release(ptr);
}

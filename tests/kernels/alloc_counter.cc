// Global operator new/delete replacement with an armed counter
// (alloc_counter.h). A separate translation unit, so the compiler never sees
// a new/free pair inlined together (-Wmismatched-new-delete).
#include "tests/kernels/alloc_counter.h"

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace anvil::kernels::testing {
namespace {

std::atomic<bool> armed{false};
std::atomic<int64_t> calls{0}, bytes{0};

}  // namespace

void ArmAllocCounter() {
  calls = 0;
  bytes = 0;
  armed = true;
}

AllocCount DisarmAllocCounter() {
  armed = false;
  return {calls.load(), bytes.load()};
}

}  // namespace anvil::kernels::testing

namespace {

void* CountedAlloc(size_t n, size_t align) {
  using namespace anvil::kernels::testing;
  if (armed.load(std::memory_order_relaxed)) {
    calls.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
  }
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n)
                : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(size_t n) { return CountedAlloc(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return CountedAlloc(n, static_cast<size_t>(a)); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }

void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

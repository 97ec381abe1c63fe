// Global operator new/delete replacement with an armed counter
// (alloc_counter.h). A separate translation unit, so the compiler never sees
// a new/free pair inlined together (-Wmismatched-new-delete).
#include "tests/kernels/alloc_counter.h"

#include <atomic>
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

void* operator new(size_t n) {
  using namespace anvil::kernels::testing;
  if (armed.load(std::memory_order_relaxed)) {
    calls.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

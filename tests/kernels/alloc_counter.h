// Counts calls of the global operator new made while armed, for tests that
// check an op allocates nothing (or nothing large) per call.
//
// alloc_counter.cc replaces operator new/delete for the whole test binary
// with malloc/free (what libstdc++'s defaults do); unarmed, the only extra
// cost is one relaxed atomic load per allocation. Counts are process-wide:
// arm it only while the call under test is the only thing allocating.
#pragma once

#include <cstdint>

namespace anvil::kernels::testing {

struct AllocCount {
  int64_t calls = 0;
  int64_t bytes = 0;
};

// Starts counting from zero.
void ArmAllocCounter();
// Stops counting and returns what was counted since ArmAllocCounter.
AllocCount DisarmAllocCounter();

}  // namespace anvil::kernels::testing

// Multithreaded memset/memcpy: the model zeroes multi-megabyte gradient and
// scratch buffers every step, and one core cannot saturate memory bandwidth.
// Threads take contiguous 64-byte-aligned slices.
#include <omp.h>

#include <cstring>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {
namespace {
constexpr size_t kMinParallelBytes = size_t{1} << 18;
}  // namespace

void ParallelMemset(int nt, void* dst, int value, size_t bytes) {
  if (bytes < kMinParallelBytes || nt <= 1) {
    std::memset(dst, value, bytes);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const Slice s =
        ThreadSlice(static_cast<int64_t>(bytes), 64, omp_get_thread_num(), omp_get_num_threads());
    if (s.end > s.begin) std::memset(static_cast<char*>(dst) + s.begin, value, s.end - s.begin);
  }
}

void ParallelMemcpy(int nt, void* dst, const void* src, size_t bytes) {
  if (bytes < kMinParallelBytes || nt <= 1) {
    if (bytes > 0) std::memmove(dst, src, bytes);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const Slice s =
        ThreadSlice(static_cast<int64_t>(bytes), 64, omp_get_thread_num(), omp_get_num_threads());
    if (s.end > s.begin) {
      std::memcpy(static_cast<char*>(dst) + s.begin, static_cast<const char*>(src) + s.begin,
                  s.end - s.begin);
    }
  }
}

}  // namespace anvil::kernels::cpu

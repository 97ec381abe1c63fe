// Timing helpers shared by the kernel benchmarks: best-of-N wall-clock or
// thread-CPU-clock milliseconds of a callable, after one warm-up call.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <functional>

namespace anvil::bench {

// Milliseconds on the wall clock, or on the calling thread's CPU clock
// (robust on a machine shared with other jobs, meaningful for 1 thread).
inline double NowMs(bool cpu_time) {
  if (cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The fastest of `repeats` calls of fn, after one untimed warm-up call
// (page faults, scratch pools, BLAS buffers, primitive creation). `before`,
// when given, runs untimed ahead of every timed call (e.g. a cache flush).
inline double BestMs(const std::function<void()>& fn, int repeats, bool cpu_time,
                     const std::function<void()>& before = nullptr) {
  fn();
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    if (before) before();
    const double t0 = NowMs(cpu_time);
    fn();
    best = std::min(best, NowMs(cpu_time) - t0);
  }
  return best;
}

}  // namespace anvil::bench

// Work partitioning helpers for the CPU ops (OpenMP).
//
// Ops that reduce across rows into per-channel outputs (bias and LayerNorm
// parameter gradients, embedding gradients) split the CHANNELS among threads
// instead of the rows: every output element then has exactly one writer, so
// there are no atomics, no per-thread scratch, and the result is bitwise
// deterministic for any thread count. Slices are multiples of 16 floats (one
// 64-byte cache line) so neighbouring threads never share a line.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace anvil::kernels::cpu {

// Below this many elements an elementwise op runs on one thread: waking the
// team costs more than it saves.
inline constexpr size_t kMinParallelElems = 1 << 15;

struct Slice {
  int64_t begin;
  int64_t end;
};

// The part of [0, n) that thread `tid` of `nthreads` owns, in `align`-sized
// granules. Threads past the end get an empty slice.
inline Slice ThreadSlice(int64_t n, int64_t align, int tid, int nthreads) {
  const int64_t granules = (n + align - 1) / align;
  const int64_t per = granules / nthreads, extra = granules % nthreads;
  const int64_t g0 = tid * per + std::min<int64_t>(tid, extra);
  const int64_t g1 = g0 + per + (tid < extra ? 1 : 0);
  return {std::min(n, g0 * align), std::min(n, g1 * align)};
}

// Threads worth using for a channel-partitioned op over C channels.
inline int ChannelThreads(int C, int nt) { return std::max(1, std::min(nt, (C + 15) / 16)); }

}  // namespace anvil::kernels::cpu

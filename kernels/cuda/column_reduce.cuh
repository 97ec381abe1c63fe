// Deterministic segmented column reductions for the CUDA ops' parameter and
// per-sample gradients, without atomics:
//   out_k[s, c] (+)= sum_{r < N} f(s, r, c)[k]      for k < K, s < S, c < C
// f is a functor, __device__ void operator()(int64_t s, int64_t r, int64_t c,
// float* v) const, filling v[0..K). Stage one sums fixed chunks of rows into
// fp32 partials (blocks of 32 columns x 8 row lanes, lanes combined in a
// fixed order); stage two adds the chunks in order and stores (or adds) each
// result once, rounded to its output's dtype. The result depends only on the
// shape, never on scheduling.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/family_util.cuh"

namespace anvil::kernels::cuda {

// One output of a column reduction: element (s, c) at p[s * seg_stride + c];
// p absent: that sum is dropped.
struct ColOut {
  TArg p;
  int64_t seg_stride = 0;
  bool accumulate = true;
};

template <int K>
struct ColOuts {
  ColOut o[K];
};

inline constexpr int kColLanes = 8;

template <int K, class F>
__global__ void ColumnPartialsKernel(F f, int64_t N, int64_t C, int64_t rows_per_chunk,
                                     float* part) {
  const int64_t col = blockIdx.x * 32 + threadIdx.x;
  const int64_t chunk = blockIdx.y, chunks = gridDim.y, s = blockIdx.z;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < N ? r0 + rows_per_chunk : N;
  float acc[K];
  for (int k = 0; k < K; ++k) acc[k] = 0.0f;
  if (col < C) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kColLanes) {
      float v[K];
      f(s, r, col, v);
      for (int k = 0; k < K; ++k) acc[k] += v[k];
    }
  }
  __shared__ float sh[K][kColLanes][33];
  for (int k = 0; k < K; ++k) sh[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && col < C) {
    for (int k = 0; k < K; ++k) {
      float t = 0.0f;
      for (int j = 0; j < kColLanes; ++j) t += sh[k][j][threadIdx.x];
      part[((s * chunks + chunk) * K + k) * C + col] = t;
    }
  }
}

template <int K>
__global__ void ColumnFinishKernel(const float* part, int64_t S, int64_t C, int64_t chunks,
                                   ColOuts<K> outs) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < S * C;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = i / C, c = i % C;
    for (int k = 0; k < K; ++k) {
      const ColOut& o = outs.o[k];
      if (!o.p.ok()) continue;
      float t = 0.0f;
      for (int64_t ch = 0; ch < chunks; ++ch) t += part[((s * chunks + ch) * K + k) * C + c];
      o.p.put(s * o.seg_stride + c, t, o.accumulate);
    }
  }
}

template <int K, class F>
void ColumnReduce(Device& d, const Ctx& ctx, const F& f, int64_t S, int64_t N, int64_t C,
                  const ColOuts<K>& outs) {
  if (S <= 0 || C <= 0) return;
  const int64_t chunks = std::clamp<int64_t>((N + 127) / 128, 1, 64);
  const int64_t rows_per_chunk = N > 0 ? (N + chunks - 1) / chunks : 1;
  ANVIL_KCHECK(S <= 65535, "column reduction over too many segments");
  Tmp part(d, sizeof(float) * static_cast<size_t>(S * chunks * K * C));
  const dim3 grid(static_cast<unsigned>((C + 31) / 32), static_cast<unsigned>(chunks),
                  static_cast<unsigned>(S));
  ColumnPartialsKernel<K>
      <<<grid, dim3(32, kColLanes), 0, ctx.stream>>>(f, N, C, rows_per_chunk, part.f());
  ANVIL_CUDA_LAUNCH_CHECK();
  ColumnFinishKernel<K><<<Blocks(static_cast<size_t>(S * C), 256), 256, 0, ctx.stream>>>(
      part.f(), S, C, chunks, outs);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda

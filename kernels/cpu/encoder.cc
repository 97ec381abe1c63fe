// Token + position embedding, forward and backward.
//
// out (B,T,C) = wte[tokens[b,t]] + wpe[t] (wpe may be null: no positions). Backward scatters dout rows into
// dwte (V,C) and dwpe (maxT,C); many rows hit the same token, so threads own
// channel slices (see parallel.h) rather than rows: no atomics, deterministic.
// Token ids are trusted to be in [0, V): the data loader validates them.
#include <omp.h>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {

void EncoderForward(int nt, float* out, const int32_t* tokens, const float* wte, const float* wpe,
                    int B, int T, int C) {
  const int64_t rows = static_cast<int64_t>(B) * T;
#pragma omp parallel for num_threads(nt) \
    schedule(static) if (rows * C >= int64_t{kMinParallelElems})
  for (int64_t r = 0; r < rows; ++r) {
    const int t = static_cast<int>(r % T);
    const float* we = wte + static_cast<int64_t>(tokens[r]) * C;
    float* o = out + r * C;
    if (wpe == nullptr) {
#pragma omp simd
      for (int c = 0; c < C; ++c) o[c] = we[c];
      continue;
    }
    const float* pe = wpe + static_cast<int64_t>(t) * C;
#pragma omp simd
    for (int c = 0; c < C; ++c) o[c] = we[c] + pe[c];
  }
}

void EncoderBackward(int nt, float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                     int B, int T, int C) {
  const int64_t rows = static_cast<int64_t>(B) * T;
  const int team = rows * C >= int64_t{kMinParallelElems} ? ChannelThreads(C, nt) : 1;
#pragma omp parallel num_threads(team)
  {
    const Slice s = ThreadSlice(C, 16, omp_get_thread_num(), omp_get_num_threads());
    const int64_t c0 = s.begin, len = s.end - s.begin;
    for (int64_t r = 0; len > 0 && r < rows; ++r) {
      const float* d = dout + r * C + c0;
      float* gw = dwte + static_cast<int64_t>(tokens[r]) * C + c0;
      if (dwpe == nullptr) {
#pragma omp simd
        for (int64_t c = 0; c < len; ++c) gw[c] += d[c];
        continue;
      }
      float* gp = dwpe + (r % T) * C + c0;
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) {
        gw[c] += d[c];
        gp[c] += d[c];
      }
    }
  }
}

}  // namespace anvil::kernels::cpu

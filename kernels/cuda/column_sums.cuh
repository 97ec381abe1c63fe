// Column reductions over N rows, ACCUMULATED into per-channel outputs:
//   db[c] += sum_i dout[i,c]                      (always, if db != null)
//   dw[c] += sum_i dout[i,c] * xhat[i,c]          (LayerNorm, if dw != null)
// with xhat = (inp - mean[i]) * rstd[i]. Used for bias and LayerNorm
// parameter gradients. Blocks of 32 channels x 8 row lanes; lanes combine
// through shared memory in a fixed order, so the result is deterministic and
// needs no atomics.
#pragma once

#include <cuda_runtime.h>

namespace anvil::kernels::cuda {

// Enqueues the reduction on `stream`. dw, inp, mean, rstd may be null
// (bias-only mode: just db).
void LaunchColumnSums(cudaStream_t stream, float* dw, float* db, const float* dout,
                      const float* inp, const float* mean, const float* rstd, int N, int C);

}  // namespace anvil::kernels::cuda

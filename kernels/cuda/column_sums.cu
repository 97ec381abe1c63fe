// Column reductions for bias and LayerNorm parameter gradients (see
// column_sums.cuh).
#include "kernels/cuda/column_sums.cuh"

namespace anvil::kernels::cuda {
namespace {

constexpr int kColTile = 32;
constexpr int kColRows = 8;

__global__ void ColumnSumsKernel(float* dw, float* db, const float* dout, const float* inp,
                                 const float* mean, const float* rstd, int N, int C) {
  __shared__ float sw[kColRows][kColTile + 1];
  __shared__ float sb[kColRows][kColTile + 1];
  const int c = blockIdx.x * kColTile + threadIdx.x;
  float aw = 0.0f, ab = 0.0f;
  if (c < C) {
    for (int i = threadIdx.y; i < N; i += kColRows) {
      const float d = dout[static_cast<size_t>(i) * C + c];
      ab += d;
      if (dw != nullptr) aw += d * (inp[static_cast<size_t>(i) * C + c] - mean[i]) * rstd[i];
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float tw = 0.0f, tb = 0.0f;
    for (int r = 0; r < kColRows; ++r) {
      tw += sw[r][threadIdx.x];
      tb += sb[r][threadIdx.x];
    }
    if (db != nullptr) db[c] += tb;
    if (dw != nullptr) dw[c] += tw;
  }
}

}  // namespace

void LaunchColumnSums(cudaStream_t stream, float* dw, float* db, const float* dout,
                      const float* inp, const float* mean, const float* rstd, int N, int C) {
  const dim3 block(kColTile, kColRows);
  const dim3 grid((C + kColTile - 1) / kColTile);
  ColumnSumsKernel<<<grid, block, 0, stream>>>(dw, db, dout, inp, mean, rstd, N, C);
}

}  // namespace anvil::kernels::cuda

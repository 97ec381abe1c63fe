// Host-side helpers shared by the CUDA op-family files (*_ops.cu): scratch
// buffers for one call, the grid-stride elementwise launcher, and the
// per-file registration functions register_ops.cu calls.
//
// Invariants: scratch comes from the device's caching allocator, so its
// release is stream-ordered (a later reuse is ordered after this call's
// kernels on the one compute stream) and steady-state steps never reach
// cudaMalloc. Launchers enqueue on ctx.stream and never synchronise.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "kernels/check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/typed.cuh"
#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels::cuda {

// A device buffer for one call.
class Tmp {
 public:
  Tmp(Device& d, size_t bytes, bool zero = false) : d_(d), p_(d.Alloc(bytes == 0 ? 64 : bytes)) {
    if (zero && bytes > 0) d.Memset(p_, 0, bytes);
  }
  ~Tmp() { d_.Free(p_); }
  Tmp(const Tmp&) = delete;
  Tmp& operator=(const Tmp&) = delete;
  void* get() const { return p_; }
  float* f() const { return static_cast<float*>(p_); }
  TArg arg(DType t = DType::kF32) const { return TArg{p_, t}; }

 private:
  Device& d_;
  void* p_;
};

inline bool AllF32(std::initializer_list<const TensorView*> vs) {
  for (const TensorView* v : vs) {
    if (v->present() && v->dtype != DType::kF32) return false;
  }
  return true;
}

// Offset between consecutive rows of a view read as (rows, last dim).
inline int64_t RowStride(const TensorView& v) {
  return v.ndim >= 2 ? v.stride[v.ndim - 2] : v.cols();
}

template <class F>
__global__ void MapKernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    f(i);
  }
}

// f(i) for i in [0, n) on ctx.stream; f is a functor with a __device__
// operator()(int64_t) const.
template <class F>
void LaunchMap(const Ctx& ctx, int64_t n, const F& f) {
  if (n <= 0) return;
  MapKernel<<<Blocks(static_cast<size_t>(n), 256), 256, 0, ctx.stream>>>(n, f);
  ANVIL_CUDA_LAUNCH_CHECK();
}

// One registration function per family file.
void RegisterElementwiseCudaOps();  // elementwise_ops.cu: add, accumulate, scale, GELU, SiLU,
                                    // SwiGLU
void RegisterNormCudaOps();         // norm_ops.cu: LayerNorm, RMSNorm
void RegisterLinearCudaOps();       // linear_ops.cu: cuBLAS fp32, cuBLASLt bf16
void RegisterAttentionCudaOps();    // attention_ops.cu
void RegisterEmbeddingCudaOps();    // embedding_ops.cu: lookup, RoPE, timestep embedding
void RegisterLossCudaOps();         // loss_ops.cu: softmax cross-entropy, MSE
void RegisterImageCudaOps();  // image_ops.cu: GroupNorm, upsample, bias, modulate, gate, concat
void RegisterConvCudaOps();   // conv_cudnn.cu
void RegisterDropoutCudaOps();  // dropout.cu

}  // namespace anvil::kernels::cuda

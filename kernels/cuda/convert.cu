// dtype conversions on CUDA. The device functions (typed.cuh) are the same
// integer algorithms as kernels/cpu/convert.h (round-to-nearest-even, NaN quieted
// with its top payload bits kept, fp16 overflow to inf, subnormals), so both
// backends produce bit-identical results; cuda_ops_test checks that.
#include "kernels/check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/typed.cuh"

namespace anvil::kernels::cuda {
namespace {

__global__ void ConvertKernel(void* dst, DType dt, const void* src, DType st, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    StoreAs(dst, dt, i, LoadAs(src, st, i));
  }
}

bool IsFloatType(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

}  // namespace

void Convert(const Ctx& ctx, void* dst, DType dst_type, const void* src, DType src_type, size_t n) {
  if (n == 0) return;
  if (dst_type == src_type) {
    ANVIL_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, n * DTypeSize(src_type), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  ANVIL_KCHECK(IsFloatType(dst_type) && IsFloatType(src_type),
               "Convert supports F32/BF16/F16 pairs and same-type copies");
  ConvertKernel<<<Blocks(n, 256), 256, 0, ctx.stream>>>(dst, dst_type, src, src_type, n);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda

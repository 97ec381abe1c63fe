#include "kernels/cpu/typed.h"

#include "kernels/cpu/convert.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {

void AccumulateF32Into(int nt, void* dst, DType dst_type, const float* src, size_t n) {
  const int64_t len = static_cast<int64_t>(n);
  const bool par = n >= kMinParallelElems;
  if (dst_type == DType::kF32) {
    float* d = static_cast<float*>(dst);
#pragma omp parallel for simd num_threads(nt) schedule(static) if (par)
    for (int64_t i = 0; i < len; ++i) d[i] += src[i];
    return;
  }
  uint16_t* d = static_cast<uint16_t*>(dst);
  if (dst_type == DType::kBF16) {
#pragma omp parallel for simd num_threads(nt) schedule(static) if (par)
    for (int64_t i = 0; i < len; ++i) d[i] = F32ToBF16(BF16ToF32(d[i]) + src[i]);
  } else {
#pragma omp parallel for simd num_threads(nt) schedule(static) if (par)
    for (int64_t i = 0; i < len; ++i) d[i] = F32ToF16(F16ToF32(d[i]) + src[i]);
  }
}

void F32Out::Finish() {
  if (buf_ == nullptr) return;
  const size_t n = static_cast<size_t>(v_.numel());
  if (acc_) {
    AccumulateF32Into(Threads(d_), v_.data, v_.dtype, buf_, n);
  } else {
    Convert(Threads(d_), v_.data, v_.dtype, buf_, DType::kF32, n);
  }
}

}  // namespace anvil::kernels::cpu

// GemmBf16 without a native bf16 GEMM: widen both operands to fp32 and run
// sgemm. Correct everywhere, and the reference the native path is tested
// against.
#include "kernels/cpu/gemm.h"

#include "kernels/cpu/blas.h"
#include "kernels/cpu/typed.h"

namespace anvil::kernels::cpu {

void GemmBf16(Device& d, bool ta, bool tb, int M, int N, int K, const TensorView& a,
              const TensorView& b, float beta, float* c) {
  F32In fa(d, a), fb(d, b);
  SetBlasThreads(Threads(d));
  Sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
        1.0f, fa.get(), ta ? M : K, fb.get(), tb ? K : N, beta, c, N);
}

std::string Bf16GemmIsa() { return "widen+sgemm"; }

}  // namespace anvil::kernels::cpu

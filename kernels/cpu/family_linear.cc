// CPU implementation of the linear family.
//
// F32: OpenBLAS sgemm (matmul.cc's forward, bit-identical to it). BF16:
// oneDNN matmul (dnnl_gemm.h), bf16 x bf16 with fp32 accumulation, writing
// bf16 or fp32 directly (bias and accumulation fused), so no operand is
// widened or staged.
#include "kernels/cpu/blas.h"
#include "kernels/cpu/dnnl_gemm.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/typed.h"
#include "kernels/op_registry.h"
#include "kernels/ops/linear.h"

namespace anvil::kernels::cpu {
namespace {

void BiasRows(int nt, float* out, const float* bias, int N, int OC) {
#pragma omp parallel for num_threads(nt) schedule(static) if (int64_t{N} * OC >= (1 << 15))
  for (int i = 0; i < N; ++i) {
    float* o = out + static_cast<int64_t>(i) * OC;
#pragma omp simd
    for (int j = 0; j < OC; ++j) o[j] += bias[j];
  }
}

void LinearForwardCpu(Device& d, const TensorView& out, const TensorView& x,
                      const TensorView& weight, const TensorView& bias, const LinearParams& p) {
  const int N = static_cast<int>(x.rows()), C = static_cast<int>(x.cols()),
            OC = static_cast<int>(weight.rows());
  const int nt = Threads(d);
  if (x.dtype == DType::kF32 && out.dtype == DType::kF32 && !p.accumulate &&
      (!bias.present() || bias.dtype == DType::kF32)) {
    MatmulForward(nt, out.as<float>(), x.as<float>(), weight.as<float>(),
                  bias.present() ? bias.as<float>() : nullptr, N, C, OC);
    return;
  }
  if (x.dtype == DType::kBF16) {
    GemmArgs g{.M = N, .N = OC, .K = C,
               .a = x.data, .a_type = x.dtype, .lda = C,
               .b = weight.data, .b_type = weight.dtype, .ldb = C, .trans_b = true,
               .c = out.data, .c_type = out.dtype, .ldc = OC,
               .bias = bias.data, .bias_type = bias.dtype, .accumulate = p.accumulate};
    Gemm(nt, g);
    return;
  }
  F32Out fo(d, out, false);
  SetBlasThreads(nt);
  Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, x.as<float>(), C,
        weight.as<float>(), C, p.accumulate ? 1.0f : 0.0f, fo.get(), OC);
  if (bias.present()) {
    F32In fb(d, bias);
    BiasRows(nt, fo.get(), fb.get(), N, OC);
  }
  fo.Finish();
}

void LinearBackwardCpu(Device& d, const TensorView& dx, const TensorView& dweight,
                       const TensorView& dbias, const TensorView& dout, const TensorView& x,
                       const TensorView& weight, const LinearBackwardParams& p) {
  const int N = static_cast<int>(x.rows()), C = static_cast<int>(x.cols()),
            OC = static_cast<int>(weight.rows());
  const int nt = Threads(d);
  const bool f32 = x.dtype == DType::kF32;
  if (dx.present()) {
    if (f32) {
      F32Out fo(d, dx, false);
      SetBlasThreads(nt);
      Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout.as<float>(), OC,
            weight.as<float>(), C, p.accumulate_dx ? 1.0f : 0.0f, fo.get(), C);
      fo.Finish();
    } else {
      Gemm(nt, GemmArgs{.M = N, .N = C, .K = OC,
                        .a = dout.data, .a_type = dout.dtype, .lda = OC,
                        .b = weight.data, .b_type = weight.dtype, .ldb = C,
                        .c = dx.data, .c_type = dx.dtype, .ldc = C,
                        .accumulate = p.accumulate_dx});
    }
  }
  if (dweight.present()) {
    if (f32) {
      SetBlasThreads(nt);
      Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout.as<float>(), OC,
            x.as<float>(), C, 1.0f, dweight.as<float>(), C);
    } else {
      Gemm(nt, GemmArgs{.M = OC, .N = C, .K = N,
                        .a = dout.data, .a_type = dout.dtype, .lda = OC, .trans_a = true,
                        .b = x.data, .b_type = x.dtype, .ldb = C,
                        .c = dweight.data, .c_type = DType::kF32, .ldc = C,
                        .accumulate = true});
    }
  }
  if (dbias.present()) {
    if (f32) {
      BiasGrad(nt, dbias.as<float>(), dout.as<float>(), N, OC);
    } else {
      BiasGradBf16(nt, dbias.as<float>(), dout.as<uint16_t>(), N, OC);
    }
  }
}

}  // namespace

void RegisterLinearOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<LinearForwardFn>(k, "linear.forward", &LinearForwardCpu, {DType::kF32, DType::kBF16});
  RegisterOp<LinearBackwardFn>(k, "linear.backward", &LinearBackwardCpu,
                               {DType::kF32, DType::kBF16});
}

}  // namespace anvil::kernels::cpu

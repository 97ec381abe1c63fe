// CPU implementations of the convert, elementwise and activation families.
// F32 operands go straight to the fp32 kernels of ops.h (bit-identical to
// them); other dtypes widen to fp32, run the same kernel, and round once.
// SwiGLU (swiglu.cc) works on typed rows directly.
#include "kernels/cpu/convert.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/typed.h"
#include "kernels/cpu/typed_ops.h"
#include "kernels/dropout_mask.h"
#include "kernels/op_registry.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/elementwise.h"

namespace anvil::kernels::cpu {
namespace {

void ConvertCpu(Device& d, const TensorView& dst, const TensorView& src) {
  Convert(Threads(d), dst.data, dst.dtype, src.data, src.dtype, static_cast<size_t>(dst.numel()));
}

bool AllF32(std::initializer_list<const TensorView*> vs) {
  for (const TensorView* v : vs) {
    if (v->present() && v->dtype != DType::kF32) return false;
  }
  return true;
}

void AddCpu(Device& d, const TensorView& out, const TensorView& a, const TensorView& b) {
  const size_t n = static_cast<size_t>(out.numel());
  if (AllF32({&out, &a, &b})) {
    ResidualForward(Threads(d), out.as<float>(), a.as<float>(), b.as<float>(), n);
    return;
  }
  F32In fa(d, a), fb(d, b);
  F32Out fo(d, out, false);
  ResidualForward(Threads(d), fo.get(), fa.get(), fb.get(), n);
  fo.Finish();
}

void AccumulateCpu(Device& d, const TensorView& dst, const TensorView& src) {
  const size_t n = static_cast<size_t>(dst.numel());
  F32In fs(d, src);
  AccumulateF32Into(Threads(d), dst.data, dst.dtype, fs.get(), n);
}

void ScaleCpu(Device& d, const TensorView& x, float alpha) {
  const size_t n = static_cast<size_t>(x.numel());
  if (x.dtype == DType::kF32) {
    Scale(Threads(d), x.as<float>(), alpha, n);
    return;
  }
  F32Out fo(d, x, false);
  Convert(Threads(d), fo.get(), DType::kF32, x.data, x.dtype, n);
  Scale(Threads(d), fo.get(), alpha, n);
  fo.Finish();
}

// Samples split among threads; the mask is a pure function of (seed, salt,
// i), so the result does not depend on the thread count.
template <typename T, typename Load, typename Store>
void DropoutRows(int nt, T* x, const int32_t* seeds, int64_t rows, int64_t n,
                 const DropoutParams& p, Load load, Store store) {
  const uint32_t threshold = DropoutThreshold(p.p);
  const float scale = 1.0f / (1.0f - p.p);
  const int threads = rows * n < static_cast<int64_t>(kMinParallelElems) ? 1 : nt;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < rows; ++b) {
    const uint64_t key = DropoutKey(static_cast<uint32_t>(seeds[b]), p.salt);
    T* row = x + b * n;
    for (int64_t i = 0; i < n; ++i) {
      row[i] = DropoutKeep(key, static_cast<uint64_t>(i), threshold) ? store(load(row[i]) * scale)
                                                                     : store(0.0f);
    }
  }
}

void DropoutCpu(Device& d, const TensorView& x, const TensorView& seeds, const DropoutParams& p) {
  const int64_t rows = seeds.shape[0], n = x.numel() / rows;
  const int32_t* s = seeds.as<int32_t>();
  if (x.dtype == DType::kF32) {
    DropoutRows(Threads(d), x.as<float>(), s, rows, n, p, [](float v) { return v; },
                [](float v) { return v; });
  } else if (x.dtype == DType::kBF16) {
    DropoutRows(Threads(d), x.as<uint16_t>(), s, rows, n, p, BF16ToF32, F32ToBF16);
  } else {
    DropoutRows(Threads(d), x.as<uint16_t>(), s, rows, n, p, F16ToF32, F32ToF16);
  }
}

void GeluForwardCpu(Device& d, const TensorView& out, const TensorView& x) {
  const size_t n = static_cast<size_t>(x.numel());
  if (out.dtype == DType::kBF16 && x.dtype == DType::kBF16) {
    GeluForwardBf16(Threads(d), out.as<uint16_t>(), x.as<uint16_t>(), n);
    return;
  }
  F32In fx(d, x);
  F32Out fo(d, out, false);
  GeluForward(Threads(d), fo.get(), fx.get(), n);
  fo.Finish();
}

void GeluBackwardCpu(Device& d, const TensorView& dx, const TensorView& x, const TensorView& dout) {
  const size_t n = static_cast<size_t>(x.numel());
  if (dx.dtype == DType::kBF16 && x.dtype == DType::kBF16 && dout.dtype == DType::kBF16) {
    GeluBackwardBf16(Threads(d), dx.as<uint16_t>(), x.as<uint16_t>(), dout.as<uint16_t>(), n);
    return;
  }
  F32In fx(d, x), fd(d, dout);
  F32Out fo(d, dx, true);
  GeluBackward(Threads(d), fo.get(), fx.get(), fd.get(), n);
  fo.Finish();
}

}  // namespace

void RegisterBasicOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<ConvertFn>(k, "convert.convert", &ConvertCpu, {DType::kF32, DType::kBF16, DType::kF16});
  RegisterOp<AddFn>(k, "elementwise.add", &AddCpu, {DType::kF32, DType::kBF16});
  RegisterOp<AccumulateFn>(k, "elementwise.accumulate", &AccumulateCpu, {DType::kF32, DType::kBF16});
  RegisterOp<ScaleFn>(k, "elementwise.scale", &ScaleCpu, {DType::kF32, DType::kBF16});
  RegisterOp<DropoutFn>(k, "elementwise.dropout", &DropoutCpu,
                        {DType::kF32, DType::kBF16, DType::kF16});
  RegisterOp<GeluForwardFn>(k, "activation.gelu_forward", &GeluForwardCpu, {DType::kF32, DType::kBF16});
  RegisterOp<GeluBackwardFn>(k, "activation.gelu_backward", &GeluBackwardCpu, {DType::kF32, DType::kBF16});
  RegisterOp<SwiGluForwardFn>(k, "activation.swiglu_forward", &SwiGluForwardCpu,
                              {DType::kF32, DType::kBF16});
  RegisterOp<SwiGluBackwardFn>(k, "activation.swiglu_backward", &SwiGluBackwardCpu,
                               {DType::kF32, DType::kBF16});
}

}  // namespace anvil::kernels::cpu

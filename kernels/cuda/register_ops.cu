// The CUDA implementations of the op families, registered for
// DeviceKind::kCuda: fp32 launchers of ops.cuh behind the family signatures
// (convert handles every float pair). Attention here is the packed-qkv
// causal kernel with its (B,NH,T,T) probabilities held in scratch for the
// call only (backward recomputes them); it takes q, k, v that are the three
// views of one packed (B,T,3C) buffer with NKV == NH.
#include <mutex>

#include "kernels/check.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/loss.h"
#include "kernels/ops/norm.h"
#include "kernels/ops/optim.h"

namespace anvil::kernels::cuda {
namespace {

int I(int64_t v) { return static_cast<int>(v); }
float* P(const TensorView& v) { return v.as<float>(); }
float* Opt(const TensorView& v) { return v.present() ? v.as<float>() : nullptr; }

void CheckF32(std::initializer_list<const TensorView*> vs) {
  for (const TensorView* v : vs) {
    ANVIL_KCHECK(!v->present() || v->dtype == DType::kF32, "CUDA ops are fp32 only for now");
  }
}

// A device buffer for one call; freeing it is stream-ordered.
class Tmp {
 public:
  Tmp(Device& d, size_t bytes, bool zero) : d_(d), p_(d.Alloc(bytes)) {
    if (zero) d.Memset(p_, 0, bytes);
  }
  ~Tmp() { d_.Free(p_); }
  float* f() const { return static_cast<float*>(p_); }

 private:
  Device& d_;
  void* p_;
};

void ConvertCuda(Device& d, const TensorView& dst, const TensorView& src) {
  Convert(CtxOf(d), dst.data, dst.dtype, src.data, src.dtype, static_cast<size_t>(dst.numel()));
}

void AddCuda(Device& d, const TensorView& out, const TensorView& a, const TensorView& b) {
  CheckF32({&out, &a, &b});
  ResidualForward(CtxOf(d), P(out), P(a), P(b), static_cast<size_t>(out.numel()));
}
void AccumulateCuda(Device& d, const TensorView& dst, const TensorView& src) {
  CheckF32({&dst, &src});
  Accumulate(CtxOf(d), P(dst), P(src), static_cast<size_t>(dst.numel()));
}
void ScaleCuda(Device& d, const TensorView& x, float alpha) {
  CheckF32({&x});
  Scale(CtxOf(d), P(x), alpha, static_cast<size_t>(x.numel()));
}

void GeluForwardCuda(Device& d, const TensorView& out, const TensorView& x) {
  CheckF32({&out, &x});
  GeluForward(CtxOf(d), P(out), P(x), static_cast<size_t>(x.numel()));
}
void GeluBackwardCuda(Device& d, const TensorView& dx, const TensorView& x, const TensorView& dout) {
  CheckF32({&dx, &x, &dout});
  GeluBackward(CtxOf(d), P(dx), P(x), P(dout), static_cast<size_t>(x.numel()));
}

void LayerNormForwardCuda(Device& d, const TensorView& out, const TensorView& mean,
                          const TensorView& rstd, const TensorView& x, const TensorView& w,
                          const TensorView& b, const LayerNormParams& p) {
  CheckF32({&out, &x, &w, &b});
  const int C = I(x.cols());
  Tmp zero(d, sizeof(float) * C, !b.present());
  LayerNormForward(CtxOf(d), P(out), P(mean), P(rstd), P(x), P(w), b.present() ? P(b) : zero.f(),
                   I(x.rows()), C, p.eps);
}
void LayerNormBackwardCuda(Device& d, const TensorView& dx, const TensorView& dw,
                           const TensorView& db, const TensorView& dout, const TensorView& x,
                           const TensorView& w, const TensorView& mean, const TensorView& rstd,
                           const LayerNormParams&) {
  CheckF32({&dx, &dout, &x, &w});
  const int C = I(x.cols());
  Tmp scratch(d, sizeof(float) * C, false);
  LayerNormBackward(CtxOf(d), P(dx), P(dw), db.present() ? P(db) : scratch.f(), P(dout), P(x), P(w),
                    P(mean), P(rstd), I(x.rows()), C);
}

void LinearForwardCuda(Device& d, const TensorView& out, const TensorView& x, const TensorView& w,
                       const TensorView& b, const LinearParams& p) {
  CheckF32({&out, &x, &w, &b});
  const int N = I(x.rows()), C = I(x.cols()), OC = I(w.rows());
  if (!p.accumulate) {
    MatmulForward(CtxOf(d), P(out), P(x), P(w), Opt(b), N, C, OC);
    return;
  }
  Tmp tmp(d, sizeof(float) * N * OC, false);
  MatmulForward(CtxOf(d), tmp.f(), P(x), P(w), Opt(b), N, C, OC);
  Accumulate(CtxOf(d), P(out), tmp.f(), static_cast<size_t>(N) * OC);
}
void LinearBackwardCuda(Device& d, const TensorView& dx, const TensorView& dw, const TensorView& db,
                        const TensorView& dout, const TensorView& x, const TensorView& w,
                        const LinearBackwardParams& p) {
  CheckF32({&dx, &dw, &db, &dout, &x, &w});
  if (dx.present() && !p.accumulate_dx) d.Memset(dx.data, 0, dx.bytes());
  MatmulBackward(CtxOf(d), Opt(dx), Opt(dw), Opt(db), P(dout), P(x), P(w), I(x.rows()), I(x.cols()),
                 I(w.rows()));
}

// The packed buffer behind q/k/v views, or abort: this kernel needs one.
const float* PackedBase(const TensorView& q, const TensorView& k, const TensorView& v, int64_t C) {
  const float* base = q.as<float>();
  ANVIL_KCHECK(k.as<float>() == base + C && v.as<float>() == base + 2 * C &&
                   q.stride[1] == 3 * C && q.stride[2] == q.shape[3] && k.shape[2] == q.shape[2],
               "CUDA attention needs packed qkv views with NKV == NH");
  return base;
}

void AttentionForwardCuda(Device& d, const TensorView& out, const TensorView& lse,
                          const TensorView& q, const TensorView& k, const TensorView& v,
                          const AttentionParams& p) {
  CheckF32({&out, &q});
  const int B = I(q.shape[0]), T = I(q.shape[1]), NH = I(q.shape[2]), C = NH * I(q.shape[3]);
  ANVIL_KCHECK(p.causal && p.scale == 0.0f, "CUDA attention is causal with the default scale");
  ANVIL_KCHECK(out.contiguous(), "CUDA attention writes a contiguous out");
  const float* qkv = PackedBase(q, k, v, C);
  Tmp att(d, sizeof(float) * B * NH * T * T, false);
  AttentionForward(CtxOf(d), P(out), att.f(), qkv, B, T, C, NH);
  d.Memset(lse.data, 0, lse.bytes());  // not used: backward recomputes the probabilities
}
void AttentionBackwardCuda(Device& d, const TensorView& dq, const TensorView& dk,
                           const TensorView& dv, const TensorView& dout, const TensorView& q,
                           const TensorView& k, const TensorView& v, const TensorView&,
                           const TensorView&, const AttentionParams& p) {
  CheckF32({&dq, &dout, &q});
  const int B = I(q.shape[0]), T = I(q.shape[1]), NH = I(q.shape[2]), C = NH * I(q.shape[3]);
  ANVIL_KCHECK(p.causal && p.scale == 0.0f, "CUDA attention is causal with the default scale");
  const float* qkv = PackedBase(q, k, v, C);
  float* dqkv = const_cast<float*>(PackedBase(dq, dk, dv, C));
  const size_t tt = sizeof(float) * B * NH * T * T;
  Tmp att(d, tt, false), datt(d, tt, false), y(d, sizeof(float) * B * T * C, false);
  AttentionForward(CtxOf(d), y.f(), att.f(), qkv, B, T, C, NH);
  AttentionBackward(CtxOf(d), dqkv, datt.f(), P(dout), qkv, att.f(), B, T, C, NH);
}

void EmbeddingForwardCuda(Device& d, const TensorView& out, const TensorView& ids,
                          const TensorView& table, const TensorView& pos) {
  CheckF32({&out, &table, &pos});
  const int C = I(table.cols());
  const int B = pos.present() ? I(ids.shape[0]) : 1;
  const int T = pos.present() ? I(ids.shape[1]) : I(ids.numel());
  Tmp zero(d, sizeof(float) * T * C, !pos.present());
  EncoderForward(CtxOf(d), P(out), ids.as<int32_t>(), P(table), pos.present() ? P(pos) : zero.f(),
                 B, T, C);
}
void EmbeddingBackwardCuda(Device& d, const TensorView& dtable, const TensorView& dpos,
                           const TensorView& dout, const TensorView& ids) {
  CheckF32({&dout});
  const int C = I(dtable.cols());
  const int B = dpos.present() ? I(ids.shape[0]) : 1;
  const int T = dpos.present() ? I(ids.shape[1]) : I(ids.numel());
  Tmp sink(d, sizeof(float) * T * C, false);
  EncoderBackward(CtxOf(d), P(dtable), dpos.present() ? P(dpos) : sink.f(), P(dout),
                  ids.as<int32_t>(), B, T, C);
}

void XentForwardCuda(Device& d, const TensorView& losses, const TensorView& probs,
                     const TensorView& logits, const TensorView& targets) {
  CheckF32({&logits});
  SoftmaxCrossEntropyForward(CtxOf(d), P(losses), P(probs), P(logits), targets.as<int32_t>(),
                             I(logits.rows()), I(logits.cols()));
}
void XentBackwardCuda(Device& d, const TensorView& dlogits, const TensorView& probs,
                      const TensorView& targets, float dloss) {
  CheckF32({&dlogits});
  SoftmaxCrossEntropyBackward(CtxOf(d), P(dlogits), P(probs), targets.as<int32_t>(), dloss,
                              I(probs.rows()), I(probs.cols()));
}

void AdamWCuda(Device& d, const TensorView& param, const TensorView& grad, const TensorView& m,
               const TensorView& v, const AdamWParams& p) {
  AdamW(CtxOf(d), P(param), P(grad), P(m), P(v), static_cast<size_t>(param.numel()), p);
}
double SquaredNormCuda(Device& d, const TensorView& x) {
  return SquaredNorm(CtxOf(d), P(x), static_cast<size_t>(x.numel()));
}
bool HasNonFiniteCuda(Device& d, const TensorView& x) {
  return HasNonFinite(CtxOf(d), P(x), static_cast<size_t>(x.numel()));
}

}  // namespace

void RegisterCudaOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    constexpr DeviceKind k = DeviceKind::kCuda;
    const std::initializer_list<DType> f32 = {DType::kF32};
    RegisterOp<ConvertFn>(k, "convert.convert", &ConvertCuda,
                          {DType::kF32, DType::kBF16, DType::kF16});
    RegisterOp<AddFn>(k, "elementwise.add", &AddCuda, f32);
    RegisterOp<AccumulateFn>(k, "elementwise.accumulate", &AccumulateCuda, f32);
    RegisterOp<ScaleFn>(k, "elementwise.scale", &ScaleCuda, f32);
    RegisterOp<DropoutFn>(k, "elementwise.dropout", &DropoutCuda,
                          {DType::kF32, DType::kBF16, DType::kF16});
    RegisterOp<GeluForwardFn>(k, "activation.gelu_forward", &GeluForwardCuda, f32);
    RegisterOp<GeluBackwardFn>(k, "activation.gelu_backward", &GeluBackwardCuda, f32);
    RegisterOp<LayerNormForwardFn>(k, "norm.layernorm_forward", &LayerNormForwardCuda, f32);
    RegisterOp<LayerNormBackwardFn>(k, "norm.layernorm_backward", &LayerNormBackwardCuda, f32);
    RegisterOp<LinearForwardFn>(k, "linear.forward", &LinearForwardCuda, f32);
    RegisterOp<LinearBackwardFn>(k, "linear.backward", &LinearBackwardCuda, f32);
    RegisterOp<AttentionForwardFn>(k, "attention.forward", &AttentionForwardCuda, f32);
    RegisterOp<AttentionBackwardFn>(k, "attention.backward", &AttentionBackwardCuda, f32);
    RegisterOp<EmbeddingForwardFn>(k, "embedding.forward", &EmbeddingForwardCuda, f32);
    RegisterOp<EmbeddingBackwardFn>(k, "embedding.backward", &EmbeddingBackwardCuda, f32);
    RegisterOp<SoftmaxXentForwardFn>(k, "loss.softmax_xent_forward", &XentForwardCuda, f32);
    RegisterOp<SoftmaxXentBackwardFn>(k, "loss.softmax_xent_backward", &XentBackwardCuda, f32);
    RegisterOp<AdamWFn>(k, "optim.adamw", &AdamWCuda, f32);
    RegisterOp<SquaredNormFn>(k, "optim.squared_norm", &SquaredNormCuda, f32);
    RegisterOp<HasNonFiniteFn>(k, "optim.has_nonfinite", &HasNonFiniteCuda, f32);
  });
}

}  // namespace anvil::kernels::cuda

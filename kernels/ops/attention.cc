#include "kernels/ops/attention.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {
namespace {

void ExpectHeads(const TensorView& v, const TensorView& q, int64_t heads, const char* op) {
  internal::Expect(v.ndim == 4 && v.stride[3] == 1, op, "q/k/v/out must be 4-D, last dim contiguous");
  internal::Expect(v.dtype == q.dtype, op, "q, k, v and out must share a dtype");
  internal::Expect(v.shape[0] == q.shape[0] && v.shape[1] == q.shape[1] &&
                       v.shape[2] == heads && v.shape[3] == q.shape[3],
                   op, "shapes disagree");
}

void ExpectAll(const char* op, const TensorView& out, const TensorView& lse, const TensorView& q,
               const TensorView& k, const TensorView& v) {
  internal::Expect(internal::IsFloat(q), op, "q must be F32 or BF16");
  const int64_t NH = q.shape[2], NKV = k.shape[2];
  internal::Expect(NKV > 0 && NH % NKV == 0, op, "query heads must be a multiple of kv heads");
  ExpectHeads(q, q, NH, op);
  ExpectHeads(k, q, NKV, op);
  ExpectHeads(v, q, NKV, op);
  ExpectHeads(out, q, NH, op);
  internal::ExpectF32(lse, op, "lse must be F32");
  internal::Expect(lse.numel() == q.shape[0] * NH * q.shape[1], op, "lse must be (B,NH,T)");
}

}  // namespace

void AttentionForward(Device& d, const TensorView& out, const TensorView& lse, const TensorView& q,
                      const TensorView& k, const TensorView& v, const AttentionParams& p) {
  static const OpHandle<AttentionForwardFn> h("attention.forward");
  ExpectAll(h.name(), out, lse, q, k, v);
  if (q.numel() > 0) h.Get(d.kind())(d, out, lse, q, k, v, p);
}

void AttentionBackward(Device& d, const TensorView& dq, const TensorView& dk, const TensorView& dv,
                       const TensorView& dout, const TensorView& q, const TensorView& k,
                       const TensorView& v, const TensorView& out, const TensorView& lse,
                       const AttentionParams& p) {
  static const OpHandle<AttentionBackwardFn> h("attention.backward");
  ExpectAll(h.name(), out, lse, q, k, v);
  ExpectHeads(dq, q, q.shape[2], h.name());
  ExpectHeads(dk, q, k.shape[2], h.name());
  ExpectHeads(dv, q, k.shape[2], h.name());
  ExpectHeads(dout, q, q.shape[2], h.name());
  if (q.numel() > 0) h.Get(d.kind())(d, dq, dk, dv, dout, q, k, v, out, lse, p);
}

QkvViews PackedQkv(void* qkv, DType dtype, int64_t B, int64_t T, int64_t C, int64_t NH) {
  const int64_t hs = C / NH;
  const TensorView base = Strided(qkv, dtype, {B, T, NH, hs}, {T * 3 * C, 3 * C, hs, 1});
  return QkvViews{base, Offset(base, C), Offset(base, 2 * C)};
}

}  // namespace anvil::kernels

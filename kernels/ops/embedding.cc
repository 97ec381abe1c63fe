#include "kernels/ops/embedding.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void EmbeddingForward(Device& d, const TensorView& out, const TensorView& ids,
                      const TensorView& table, const TensorView& pos) {
  static const OpHandle<EmbeddingForwardFn> h("embedding.forward");
  internal::ExpectFloat(out, h.name(), "out");
  internal::ExpectFloat(table, h.name(), "table");
  internal::Expect(ids.dtype == DType::kI32 && ids.contiguous(), h.name(), "ids must be I32");
  const int64_t C = table.cols();
  internal::Expect(out.numel() == ids.numel() * C && (!pos.present() || pos.cols() == C),
                   h.name(), "shapes disagree");
  internal::Expect(!pos.present() || ids.ndim == 2, h.name(), "ids must be (B,T) with positions");
  if (ids.numel() > 0) h.Get(d.kind())(d, out, ids, table, pos);
}

void EmbeddingBackward(Device& d, const TensorView& dtable, const TensorView& dpos,
                       const TensorView& dout, const TensorView& ids) {
  static const OpHandle<EmbeddingBackwardFn> h("embedding.backward");
  internal::ExpectF32(dtable, h.name(), "dtable must be F32");
  internal::Expect(!dpos.present() || dpos.dtype == DType::kF32, h.name(), "dpos must be F32");
  internal::ExpectFloat(dout, h.name(), "dout");
  internal::Expect(dout.numel() == ids.numel() * dtable.cols(), h.name(), "shapes disagree");
  if (ids.numel() > 0) h.Get(d.kind())(d, dtable, dpos, dout, ids);
}

namespace {
void ExpectRope(const TensorView& x, const RopeParams& p, const char* op) {
  internal::Expect(x.present() || x.numel() == 0, op, "missing operand");
  internal::Expect(internal::IsFloat(x), op, "x must be F32 or BF16");
  internal::Expect(x.ndim == 4 && x.stride[3] == 1, op,
                   "x must be (B,T,NH,hd) with a contiguous last dim");
  internal::Expect(x.shape[3] % 2 == 0, op, "head size must be even");
  internal::Expect(p.theta > 0.0f, op, "theta must be > 0");
}
}  // namespace

void RopeForward(Device& d, const TensorView& x, const RopeParams& p) {
  static const OpHandle<RopeForwardFn> h("embedding.rope_forward");
  ExpectRope(x, p, h.name());
  if (x.numel() > 0) h.Get(d.kind())(d, x, p);
}

void RopeBackward(Device& d, const TensorView& dx, const RopeParams& p) {
  static const OpHandle<RopeBackwardFn> h("embedding.rope_backward");
  ExpectRope(dx, p, h.name());
  if (dx.numel() > 0) h.Get(d.kind())(d, dx, p);
}

}  // namespace anvil::kernels

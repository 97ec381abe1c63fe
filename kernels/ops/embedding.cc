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

}  // namespace anvil::kernels

#include "kernels/ops/concat.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {
namespace {

// a, b, out read as rows of their last dimension: same row count, widths add.
void CheckRows(const char* op, const TensorView& out, const TensorView& a, const TensorView& b) {
  internal::Expect(out.ndim >= 1 && a.ndim >= 1 && b.ndim >= 1, op, "views need a channel dim");
  const int64_t ca = a.dim(-1), cb = b.dim(-1), co = out.dim(-1);
  internal::Expect(co == ca + cb, op, "out's channels must be a's plus b's");
  internal::Expect(ca > 0 && cb > 0, op, "a and b need channels");
  const int64_t rows = out.numel() / co;
  internal::Expect(a.numel() == rows * ca && b.numel() == rows * cb, op,
                   "a, b and out differ in rows");
}

}  // namespace

void ConcatChannels(Device& d, const TensorView& out, const TensorView& a, const TensorView& b) {
  static const OpHandle<ConcatChannelsFn> h("image.concat_channels");
  internal::ExpectFloat(out, h.name(), "out");
  internal::ExpectFloat(a, h.name(), "a");
  internal::ExpectFloat(b, h.name(), "b");
  CheckRows(h.name(), out, a, b);
  if (out.numel() > 0) h.Get(d.kind())(d, out, a, b);
}

void ConcatChannelsBackward(Device& d, const TensorView& da, const TensorView& db,
                            const TensorView& dout) {
  static const OpHandle<ConcatChannelsBackwardFn> h("image.concat_channels_backward");
  internal::ExpectFloat(dout, h.name(), "dout");
  internal::Expect(da.present() && db.present(), h.name(), "da and db must both be given");
  internal::ExpectFloat(da, h.name(), "da");
  internal::ExpectFloat(db, h.name(), "db");
  CheckRows(h.name(), dout, da, db);
  if (dout.numel() > 0) h.Get(d.kind())(d, da, db, dout);
}

}  // namespace anvil::kernels

// CPU implementation of channel concatenation (kernels/ops/concat.h): one
// row (a position's channels) at a time through rows.h; rows are split among
// threads, each row has one writer.
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/typed.h"
#include "kernels/op_registry.h"
#include "kernels/ops/concat.h"

namespace anvil::kernels::cpu {
namespace {

bool Parallel(int nt, int64_t elems) {
  return nt > 1 && static_cast<size_t>(elems) >= kMinParallelElems;
}

void ConcatChannelsCpu(Device& d, const TensorView& out, const TensorView& a,
                       const TensorView& b) {
  const int64_t ca = a.dim(-1), cb = b.dim(-1), co = ca + cb, rows = out.numel() / co;
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 2, co);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, out.numel()))
  for (int64_t r = 0; r < rows; ++r) {
    const float* ra = LoadRow(a, r * ca, ca, tb.Get(0));
    const float* rb = LoadRow(b, r * cb, cb, tb.Get(1));
    StoreRow(out, r * co, ra, ca, false);
    StoreRow(out, r * co + ca, rb, cb, false);
  }
}

void ConcatChannelsBackwardCpu(Device& d, const TensorView& da, const TensorView& db,
                               const TensorView& dout) {
  const int64_t ca = da.dim(-1), cb = db.dim(-1), co = ca + cb, rows = dout.numel() / co;
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 1, co);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, dout.numel()))
  for (int64_t r = 0; r < rows; ++r) {
    const float* rd = LoadRow(dout, r * co, co, tb.Get(0));
    StoreRow(da, r * ca, rd, ca, true);
    StoreRow(db, r * cb, rd + ca, cb, true);
  }
}

}  // namespace

void RegisterConcatOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<ConcatChannelsFn>(k, "image.concat_channels", &ConcatChannelsCpu, both);
  RegisterOp<ConcatChannelsBackwardFn>(k, "image.concat_channels_backward",
                                       &ConcatChannelsBackwardCpu, both);
}

}  // namespace anvil::kernels::cpu

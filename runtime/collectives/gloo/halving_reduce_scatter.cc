// HalvingReduceScatter implementation (see the header).
#include "runtime/collectives/gloo/halving_reduce_scatter.h"

#include <algorithm>

#include "gloo/common/error.h"
#include "gloo/common/logging.h"
#include "gloo/transport/unbound_buffer.h"
#include "gloo/types.h"

namespace anvil::collectives_internal {

bool IsPowerOfTwo(int n) { return n > 0 && (n & (n - 1)) == 0; }

void HalvingReduceScatter(const std::shared_ptr<gloo::Context>& context,
                          const ReduceScatterArgs& args, ReduceScatterScratch* scratch) {
  const int n = context->size;
  const int r = context->rank;
  if (n == 1 || args.chunk_elems == 0) return;
  GLOO_ENFORCE(IsPowerOfTwo(n), "halving reduce-scatter needs 2^k ranks, got ", n);
  const size_t es = args.elem_size;
  const size_t chunk_bytes = args.chunk_elems * es;
  // Segments: whole elements, at most max_segment_bytes, never more than
  // the first (largest) half.
  const size_t half_bytes = chunk_bytes * (n / 2);
  const size_t seg_bytes =
      std::min(half_bytes, std::max<size_t>(1, args.max_segment_bytes / es) * es);
  constexpr size_t kDepth = 2;
  gloo::transport::UnboundBuffer* const tmp_buf = scratch->Reserve(*context, kDepth * seg_bytes);
  uint8_t* const tmp = scratch->bytes.data();
  uint8_t* const base = static_cast<uint8_t*>(args.data);
  auto data_buf = context->createUnboundBuffer(args.data, chunk_bytes * n);
  const auto slot = gloo::Slot::build(kHalvingReduceScatterSlotPrefix, args.tag);

  int lo = 0, hi = n;  // this rank's range of chunks
  for (int d = n / 2; d >= 1; d /= 2) {
    const int partner = r ^ d;
    const int mid = (lo + hi) / 2;
    const bool keep_low = r < mid;
    const size_t keep_off = static_cast<size_t>(keep_low ? lo : mid) * chunk_bytes;
    const size_t give_off = static_cast<size_t>(keep_low ? mid : lo) * chunk_bytes;
    const size_t bytes = static_cast<size_t>(hi - lo) / 2 * chunk_bytes;
    const size_t segs = (bytes + seg_bytes - 1) / seg_bytes;
    auto seg_len = [&](size_t j) { return std::min(seg_bytes, bytes - j * seg_bytes); };
    for (size_t i = 0; i < segs + kDepth; ++i) {
      if (i >= kDepth && i - kDepth < segs) {
        const size_t j = i - kDepth;
        CheckIo(tmp_buf->waitRecv(args.timeout), "halving reduce-scatter: receive aborted");
        uint8_t* own = base + keep_off + j * seg_bytes;
        args.reduce(own, own, tmp + (j % kDepth) * seg_bytes, seg_len(j) / es);
        CheckIo(data_buf->waitSend(args.timeout), "halving reduce-scatter: send aborted");
      }
      if (i < segs) {
        tmp_buf->recv(partner, slot, (i % kDepth) * seg_bytes, seg_len(i));
        data_buf->send(partner, slot, give_off + i * seg_bytes, seg_len(i));
      }
    }
    if (keep_low) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
}

}  // namespace anvil::collectives_internal

// DirectReduceScatter implementation: post every receive, then every send,
// then wait for all and reduce in rank order.
#include "runtime/collectives/gloo/direct_reduce_scatter.h"

#include "gloo/common/error.h"
#include "gloo/types.h"

namespace anvil::collectives_internal {

void DirectReduceScatter(const std::shared_ptr<gloo::Context>& context,
                         const ReduceScatterArgs& args, ReduceScatterScratch* scratch) {
  const int n = context->size;
  const int r = context->rank;
  if (n == 1 || args.chunk_elems == 0) return;
  const size_t chunk_bytes = args.chunk_elems * args.elem_size;
  const size_t need = chunk_bytes * (n - 1);
  gloo::transport::UnboundBuffer* const tmp = scratch->Reserve(*context, need);
  uint8_t* const base = static_cast<uint8_t*>(args.data);
  auto data_buf = context->createUnboundBuffer(args.data, chunk_bytes * n);
  const auto slot = gloo::Slot::build(kDirectReduceScatterSlotPrefix, args.tag);

  // Peer k (1..n-1) is rank (r + k) mod n; its chunk lands in slot k-1.
  for (int k = 1; k < n; ++k) tmp->recv((r + k) % n, slot, (k - 1) * chunk_bytes, chunk_bytes);
  for (int k = 1; k < n; ++k) {
    const int peer = (r + n - k) % n;  // staggered so that not everyone hits rank 0 first
    data_buf->send(peer, slot, peer * chunk_bytes, chunk_bytes);
  }
  for (int k = 1; k < n; ++k) {
    CheckIo(tmp->waitRecv(args.timeout), "direct reduce-scatter: receive aborted");
  }
  uint8_t* const own = base + r * chunk_bytes;
  for (int k = 1; k < n; ++k) {
    args.reduce(own, own, scratch->bytes.data() + (k - 1) * chunk_bytes, args.chunk_elems);
  }
  for (int k = 1; k < n; ++k) {
    CheckIo(data_buf->waitSend(args.timeout), "direct reduce-scatter: send aborted");
  }
}

}  // namespace anvil::collectives_internal

// RingReduceScatter implementation. Units of work are (step, segment) pairs
// in step-major order; unit u sends a segment that unit u - S reduced (S =
// segments per chunk), so a window of D = min(2, S) units in flight never
// sends data that is not final yet.
#include "runtime/collectives/gloo/ring_reduce_scatter.h"

#include <algorithm>

#include "gloo/common/error.h"
#include "gloo/transport/unbound_buffer.h"
#include "gloo/types.h"

namespace anvil::collectives_internal {

void RingReduceScatter(const std::shared_ptr<gloo::Context>& context,
                       const ReduceScatterArgs& args, ReduceScatterScratch* scratch) {
  const int n = context->size;
  const int r = context->rank;
  if (n == 1 || args.chunk_elems == 0) return;

  const size_t es = args.elem_size;
  const size_t chunk_bytes = args.chunk_elems * es;
  const size_t max_seg_elems = std::max<size_t>(1, args.max_segment_bytes / es);
  // Chunks of at least 2 * kMinPipelinedSegmentBytes travel in two or more
  // segments, so that I/O and reduction overlap; smaller ones in one message
  // (a second round trip would cost more than the overlap saves).
  const size_t seg_elems =
      chunk_bytes < 2 * args.min_pipelined_segment_bytes
          ? std::min(max_seg_elems, args.chunk_elems)
          : std::min(max_seg_elems, (args.chunk_elems + 1) / 2);
  const size_t segs = (args.chunk_elems + seg_elems - 1) / seg_elems;
  const size_t seg_bytes = seg_elems * es;
  const size_t depth = std::min<size_t>(2, segs);
  const size_t units = static_cast<size_t>(n - 1) * segs;

  gloo::transport::UnboundBuffer* const tmp_buf = scratch->Reserve(*context, depth * seg_bytes);
  uint8_t* const tmp = scratch->bytes.data();
  uint8_t* const base = static_cast<uint8_t*>(args.data);
  auto data_buf = context->createUnboundBuffer(args.data, chunk_bytes * n);
  const auto slot = gloo::Slot::build(kRingReduceScatterSlotPrefix, args.tag);
  const int right = (r + 1) % n;
  const int left = (r + n - 1) % n;

  struct Unit {
    size_t send_offset;
    size_t recv_offset;
    size_t bytes;
  };
  auto unit = [&](size_t u) {
    const size_t step = u / segs;
    const size_t seg = u % segs;
    const size_t send_chunk = (r + 2 * n - 1 - step) % n;
    const size_t recv_chunk = (r + 2 * n - 2 - step) % n;
    const size_t seg_offset = seg * seg_bytes;
    return Unit{send_chunk * chunk_bytes + seg_offset, recv_chunk * chunk_bytes + seg_offset,
                std::min(seg_bytes, chunk_bytes - seg_offset)};
  };

  for (size_t i = 0; i < units + depth; ++i) {
    if (i >= depth) {
      const size_t j = i - depth;
      const Unit done = unit(j);
      CheckIo(tmp_buf->waitRecv(args.timeout), "ring reduce-scatter: receive aborted");
      args.reduce(base + done.recv_offset, base + done.recv_offset,
                  tmp + (j % depth) * seg_bytes, done.bytes / es);
      CheckIo(data_buf->waitSend(args.timeout), "ring reduce-scatter: send aborted");
    }
    if (i < units) {
      const Unit next = unit(i);
      tmp_buf->recv(left, slot, (i % depth) * seg_bytes, next.bytes);
      data_buf->send(right, slot, next.send_offset, next.bytes);
    }
  }
}

}  // namespace anvil::collectives_internal

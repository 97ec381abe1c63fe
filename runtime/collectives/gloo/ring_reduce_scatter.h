// RingReduceScatter: in-place, bandwidth-optimal reduce-scatter over Gloo's
// point-to-point unbound buffers (Gloo's own ReduceScatterHalvingDoubling
// copies the whole buffer, counts in int, and wants a per-buffer set-up).
//
// Algorithm: the buffer is size() chunks of `chunk_elems`; rank r sends to
// r+1 and receives from r-1. In step s (0 <= s < size-1) rank r sends chunk
// (r-1-s) mod n and reduces the incoming chunk (r-2-s) mod n into its own
// copy; after n-1 steps chunk r holds the full reduction. Each chunk moves in
// segments of at most `max_segment_bytes`, two in flight, so the network
// carries one segment while the CPU reduces the previous one (chunks under
// 2 * `min_pipelined_segment_bytes` go whole: one message per step).
// Invariants: sends (n-1)/n of the buffer per rank, like an optimal
// reduce-scatter; uses a receive scratch of 2 segments; chunks other than
// chunk r are clobbered with partial sums; Gloo errors propagate as the
// exceptions Gloo throws (gloo::IoException on timeout or a lost peer).
#pragma once

#include <memory>

#include "gloo/context.h"
#include "runtime/collectives/gloo/reduce_scatter_args.h"

namespace anvil::collectives_internal {

void RingReduceScatter(const std::shared_ptr<gloo::Context>& context,
                       const ReduceScatterArgs& args, ReduceScatterScratch* scratch);

}  // namespace anvil::collectives_internal

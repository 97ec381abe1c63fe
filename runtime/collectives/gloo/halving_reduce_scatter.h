// HalvingReduceScatter: in-place reduce-scatter by recursive halving, for
// power-of-two group sizes (Gloo's ReduceScatterHalvingDoubling does the same
// exchanges, but copies the whole buffer and wants a per-buffer set-up).
//
// Algorithm: the buffer is n = 2^k chunks of `chunk_elems`; rank r owns the
// range [0, n) of chunks. In step s (distance d = n/2, n/4, ..., 1) it pairs
// with r ^ d, splits its range in two, sends the half without chunk r to the
// partner and reduces the partner's copy of the other half into its own,
// which becomes its range. After k steps the range is chunk r, reduced over
// all ranks. log2(n) rounds instead of the ring's n - 1, the same bytes
// ((n-1)/n of the buffer per rank), so it wins wherever a round costs more
// than its bytes: small chunks, or more ranks than cores.
// Each half moves in segments of at most `max_segment_bytes`, two in flight,
// so transfer overlaps reduction; a step's sends start only after the
// previous step's reductions are done (they send what those produced).
// Invariants: n must be a power of two (caller checks); receive scratch of 2
// segments; chunks other than chunk r are clobbered with partial sums; Gloo
// errors propagate as the exceptions Gloo throws.
#pragma once

#include <memory>

#include "gloo/context.h"
#include "runtime/collectives/gloo/reduce_scatter_args.h"

namespace anvil::collectives_internal {

bool IsPowerOfTwo(int n);

void HalvingReduceScatter(const std::shared_ptr<gloo::Context>& context,
                          const ReduceScatterArgs& args, ReduceScatterScratch* scratch);

}  // namespace anvil::collectives_internal

// DirectReduceScatter: in-place, latency-optimal reduce-scatter for small
// chunks. Every rank sends chunk p straight to rank p and receives its own
// chunk from every peer at once: one network step instead of the ring's
// n-1, with the same (n-1)/n of the buffer sent per rank.
// Invariants: the n-1 incoming chunks land in the scratch ((n-1) chunks) and
// are reduced into chunk `rank` in a fixed order (ranks rank+1, rank+2, ...
// mod n), so results do not depend on arrival order; other chunks are left
// untouched; Gloo errors propagate as the exceptions Gloo throws. Meant for
// chunks of a few tens of KiB, where the ring's per-step latency dominates.
#pragma once

#include <memory>

#include "gloo/context.h"
#include "runtime/collectives/gloo/reduce_scatter_args.h"

namespace anvil::collectives_internal {

void DirectReduceScatter(const std::shared_ptr<gloo::Context>& context,
                         const ReduceScatterArgs& args, ReduceScatterScratch* scratch);

}  // namespace anvil::collectives_internal

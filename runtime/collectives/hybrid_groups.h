// Hybrid-sharding groups: a node-local group (shard inside a node) and a
// cross-node group (replicate across nodes), both split from a world group.
// Invariants: ranks are node-major (rank = node * local_size + local_rank,
// what the launcher assigns); the node-local group of a rank holds the
// ranks of its node in local-rank order, its cross-node group holds the
// ranks with its local rank, one per node, in node order. Every rank of
// `world` must call SplitHybrid, like any Split.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/collectives/process_group.h"

namespace anvil {

struct HybridGroups {
  std::unique_ptr<ProcessGroup> node_local;  // size local_size, rank = local rank
  std::unique_ptr<ProcessGroup> cross_node;  // size world/local_size, rank = node
};

// InvalidArgument when local_size does not divide world.size().
absl::StatusOr<HybridGroups> SplitHybrid(ProcessGroup& world, int local_size);

}  // namespace anvil

// SplitHybrid: two Splits of the world group (node-local first, then
// cross-node), the same order on every rank.
#include "runtime/collectives/hybrid_groups.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil {

absl::StatusOr<HybridGroups> SplitHybrid(ProcessGroup& world, int local_size) {
  if (local_size <= 0 || world.size() % local_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("SplitHybrid: local size ", local_size,
                                                   " does not divide world size ", world.size()));
  }
  const int node = world.rank() / local_size;
  const int local_rank = world.rank() % local_size;
  HybridGroups groups;
  ASSIGN_OR_RETURN(groups.node_local, world.Split({.color = node, .key = local_rank}));
  ASSIGN_OR_RETURN(groups.cross_node, world.Split({.color = local_rank, .key = node}));
  return groups;
}

}  // namespace anvil

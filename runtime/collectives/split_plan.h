// PlanSplit: the store exchange behind ProcessGroup::Split, shared by every
// backend so that no backend needs a host collective (NCCL buffers live on
// the device) to agree on sub-group membership.
// Invariants: every rank of the parent publishes (color, key) under
// "split<seq>/<rank>" of the parent's store namespace and reads all of them,
// so every member computes the same membership and order: ranks with equal
// color, sorted by (key, parent rank). The child's namespace is
// "<parent>/split<seq>/color<color>", distinct for every split and color.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/collectives/collective_options.h"
#include "runtime/store/store.h"

namespace anvil {

struct SplitPlan {
  std::string name;               // the child's store namespace
  int rank = 0;                   // this rank in the child
  std::vector<int> parent_ranks;  // child rank i is parent rank parent_ranks[i]
  int size() const { return static_cast<int>(parent_ranks.size()); }
};

// `group_store` is the parent's (prefixed) store, `parent_name` its
// namespace, `seq` the parent's count of earlier splits.
absl::StatusOr<SplitPlan> PlanSplit(Store& group_store, const std::string& parent_name, int seq,
                                    int rank, int size, const SplitOptions& options,
                                    absl::Duration timeout);

}  // namespace anvil

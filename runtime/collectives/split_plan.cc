// PlanSplit implementation: one Set and one MultiGet per rank.
#include "runtime/collectives/split_plan.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace anvil {

absl::StatusOr<SplitPlan> PlanSplit(Store& group_store, const std::string& parent_name, int seq,
                                    int rank, int size, const SplitOptions& options,
                                    absl::Duration timeout) {
  if (options.color < 0) {
    return absl::InvalidArgumentError(absl::StrCat("Split: color must be >= 0, got ", options.color));
  }
  const std::string base = absl::StrCat("split", seq, "/");
  RETURN_IF_ERROR(
      group_store.Set(absl::StrCat(base, rank), absl::StrCat(options.color, ",", options.key)));
  std::vector<std::string> keys;
  keys.reserve(size);
  for (int r = 0; r < size; ++r) keys.push_back(absl::StrCat(base, r));
  ASSIGN_OR_RETURN(std::vector<std::string> values, group_store.MultiGet(keys, timeout));

  std::vector<std::tuple<int, int>> members;  // (key, parent rank) of my color
  for (int r = 0; r < size; ++r) {
    std::vector<std::string> parts = absl::StrSplit(values[r], ',');
    int color = 0;
    int key = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &color) ||
        !absl::SimpleAtoi(parts[1], &key)) {
      return absl::InternalError(
          absl::StrCat("Split: malformed entry '", values[r], "' from rank ", r));
    }
    if (color == options.color) members.emplace_back(key, r);
  }
  std::sort(members.begin(), members.end());
  SplitPlan plan;
  plan.name = absl::StrCat(parent_name, "/split", seq, "/color", options.color);
  for (const auto& [key, r] : members) {
    if (r == rank) plan.rank = static_cast<int>(plan.parent_ranks.size());
    plan.parent_ranks.push_back(r);
  }
  return plan;
}

}  // namespace anvil

// Slurm hostlist expansion: "node[01-04,07],gpu-a" -> node01 node02 node03
// node04 node07 gpu-a, the same list `scontrol show hostnames` prints.
// Invariants: order is preserved (left to right, ranges ascending as
// written); zero padding follows the width of the range's first bound; several
// bracket groups in one name expand as a cartesian product ("r[1-2]n[1-2]" ->
// r1n1 r1n2 r2n1 r2n2); malformed input is an InvalidArgument naming the
// offending piece, never a partial list.
#pragma once

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace anvil::launcher {

// Upper bound on the expanded size, so a typo like "n[0-999999999]" fails
// fast instead of exhausting memory.
inline constexpr size_t kMaxHostlistHosts = 1 << 20;

absl::StatusOr<std::vector<std::string>> ExpandHostlist(absl::string_view hostlist);

}  // namespace anvil::launcher

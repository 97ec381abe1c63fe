// Where each worker's stdout/stderr go: the torchrun `--redirects` / `--tee`
// syntax ("3", or per local rank "0:1,1:2" with 0 none, 1 stdout, 2 stderr,
// 3 both) and `--local_ranks_filter` ("0,2": only those local ranks reach the
// console). Invariant: a stream that is redirected never reaches the console;
// when a log directory is set, every stream of every rank is also written to
// <log_dir>/<run_id>/attempt_<n>/<local_rank>/{stdout,stderr}.log.
#pragma once

#include <map>
#include <set>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace anvil::launcher {

enum StdMask : int { kStdNone = 0, kStdOut = 1, kStdErr = 2, kStdBoth = 3 };

// A mask for all ranks, optionally overridden per local rank.
struct StdSpec {
  int all = kStdNone;
  std::map<int, int> per_rank;
  int For(int local_rank) const;
};

absl::StatusOr<StdSpec> ParseStdSpec(absl::string_view text);
// "" -> empty set meaning "all"; "0,2" -> {0, 2}.
absl::StatusOr<std::set<int>> ParseLocalRanksFilter(absl::string_view text);

struct LogOptions {
  std::string log_dir;  // "" = no per-rank files
  StdSpec redirects;    // stream goes to the file only
  StdSpec tee;          // stream goes to the file and the console
  std::set<int> console_ranks;  // empty = all local ranks
  int stderr_tail_lines = 20;   // kept in memory for root-cause reports
};

}  // namespace anvil::launcher

// ProgressWatch: the agent's view of its local workers' progress, read from
// the files they write (runtime/trainer/progress_file.h), and the hang
// watchdog built on it (--hang_timeout).
// A rank "makes progress" when its step, its count of collectives begun, or
// its in/out-of-collective state changes; the watch times that with the
// agent's own clock, so worker clocks do not matter. A worker that writes
// no file (not this project's `train`) is never judged.
// Who is named: a rank stuck outside any collective is the cause, and the
// ranks blocked in a collective are waiting for it; so a rank in a
// collective is only named after 1.5 x the timeout (a node whose ranks are
// all waiting lets the node holding the cause speak first), and among
// several stalled ranks the one outside a collective, else the one with the
// fewest collectives begun, is named.
// The watch arms for a rank once it has completed a step in this attempt:
// start-up (connecting, loading a checkpoint, measuring the GEMM peak) has
// no step or collective cadence, and train bounds it by --dist_timeout_s.
// Invariants: Poll reads each file at most once; ranks without a file or
// without a completed step are never named.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "runtime/trainer/progress_file.h"

namespace anvil::launcher {

struct WatchedRank {
  int rank = 0;
  int local_rank = 0;
  std::string path;  // its ANVIL_PROGRESS_FILE
};

struct RankProgress {
  WatchedRank who;
  std::optional<ProgressSnapshot> last;  // none until the worker writes one
  absl::Time last_change;                // agent clock
  absl::Time last_heartbeat;             // agent clock: when a new line last appeared
};

class ProgressWatch {
 public:
  explicit ProgressWatch(absl::Duration hang_timeout) : timeout_(hang_timeout) {}

  void Reset(std::vector<WatchedRank> ranks, absl::Time now);
  void Poll(absl::Time now);
  // The rank to name when one has stalled past the rule above: a one-line
  // description ("rank 1 (pid 123) made no progress for 3.0s (--hang_timeout 3s):
  // step 3, outside any collective (...)"); nullopt otherwise or when off.
  std::optional<std::string> CheckHang(absl::Time now) const;
  const std::vector<RankProgress>& ranks() const { return ranks_; }

 private:
  absl::Duration timeout_;
  std::vector<RankProgress> ranks_;
};

}  // namespace anvil::launcher

// Straggler report: which rank is slowest and by how much, and which rank is
// persistently slower than the others by a factor.
// The time compared is each rank's *busy* time per step: the step's wall
// time minus the time its main thread waited on collectives. In a
// synchronous step every rank's wall time is the slowest rank's (the others
// wait for it inside the gradient reduction), so wall times cannot tell the
// ranks apart; busy times can.
// StragglerDetector keeps the last `window` samples of every rank's busy
// time (a sample: the mean per step over the steps between two gathers).
// A rank's lag is its mean over the window divided by the median of the
// other ranks' means, minus 1 (with 2 ranks: against the other rank). A
// rank is persistently slow once the window is full and its ratio is at
// least `factor`; it is reported once when it becomes so, and again only
// after its ratio has dropped below `factor` and risen again.
// Invariants: spread() is defined (slowest >= 0) once a sample was added to
// a world of 2 or more ranks; no rank is ever reported before `window`
// samples.
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/collectives/process_group.h"

namespace anvil::metrics {

// Every rank's `value` (index = rank). Collective over `group`: every rank
// calls it at the same point of its sequence of collectives.
absl::StatusOr<std::vector<float>> GatherFromRanks(ProcessGroup* group, float value);

struct Spread {
  int slowest = -1;        // rank; -1 before any step or with one rank
  double lag = 0;          // slowest / median of the others - 1 (0.18: +18%)
  double slowest_ms = 0;   // its mean busy time over the window
  double others_ms = 0;    // the median of the other ranks' means
};

struct SlowRank {
  int rank = 0;
  double ratio = 0;        // its mean / the median of the others' means
  double ms = 0;
  double others_ms = 0;
};

class StragglerDetector {
 public:
  StragglerDetector(int world_size, double factor, int window);

  // One sample of busy time per rank (size world_size).
  void Add(const std::vector<float>& busy_ms);
  Spread spread() const;
  // Ranks that became persistently slow with the last Add.
  const std::vector<SlowRank>& newly_slow() const { return newly_slow_; }
  int window() const { return window_; }
  double factor() const { return factor_; }

 private:
  double Mean(int rank) const;
  // Median of the means of every rank but `except`.
  double MedianOfOthers(int except) const;

  int world_;
  double factor_;
  int window_;
  std::vector<std::vector<float>> ring_;  // [slot][rank]
  std::vector<double> sums_;              // per rank, over the ring's filled slots
  size_t next_ = 0;
  size_t filled_ = 0;
  std::vector<bool> flagged_;
  std::vector<SlowRank> newly_slow_;
};

}  // namespace anvil::metrics

// Progress: the percent done and the estimated time left on the step line,
// "step 120/2000 (6%) | ... | eta 3m12s".
// The estimate is remaining steps x a smoothed step time: an exponential
// moving average (weight kAlpha per step) of the wall-clock time between
// consecutive steps, so evaluations and checkpoint stalls count at their
// average rate. The first step (kernel set-up, first-touch allocations) is
// only used until the second arrives, which restarts the average.
// Invariants: eta_s() is 0 at or past the last step and never negative;
// FormatDuration always has one or two units ("45s", "3m12s", "2h05m",
// "3d04h").
#pragma once

#include <string>

namespace anvil::metrics {

// "45s", "3m12s", "2h05m", "3d04h"; negative or non-finite: "?".
std::string FormatDuration(double seconds);

class Progress {
 public:
  static constexpr double kAlpha = 0.1;

  explicit Progress(int total_steps) : total_(total_steps) {}

  // Step `step` (1-based count) finished `step_s` seconds after the previous
  // one did (for the first step of this process: the step's own duration).
  void Add(int step, double step_s);

  double smoothed_step_s() const { return smoothed_s_; }
  // Whole percent done, rounded down (6 at 120/2000).
  int percent() const;
  double eta_s() const;
  // "eta 3m12s"; "eta ?" before the first step.
  std::string EtaText() const;

 private:
  int total_;
  int step_ = 0;
  int added_ = 0;
  double smoothed_s_ = 0;
};

}  // namespace anvil::metrics

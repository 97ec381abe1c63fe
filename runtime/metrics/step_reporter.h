// StepReporter: everything the trainer reports per step beyond its own
// numbers: the percent and ETA of the step line, the straggler spread and
// warning, and the metrics sinks (--tensorboard_dir, --metrics_jsonl).
// The trainer calls EndStep once per optimizer step on every rank, then
// Record once per step (after that step's evaluation) with the step's
// scalars; only rank 0 owns sinks and logs.
// Invariants: with several ranks and straggler_factor > 0, EndStep issues
// one all-gather of one float (this rank's mean busy time per step since
// the last gather) on the world group at every step that is a multiple of
// straggler_every, at the same point on every rank (it is part of the
// collective sequence, so the factor and the cadence must match across
// ranks); at other steps, with one rank, or with a factor of 0, it
// communicates nothing. The spread shown is the one of the last gather. A sink error fails Record with the sink's message
// (the run stops rather than silently losing its metrics).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/collectives/process_group.h"
#include "runtime/metrics/metrics_sink.h"
#include "runtime/metrics/progress.h"
#include "runtime/metrics/straggler.h"

namespace anvil::metrics {

class EventFileWriter;

struct ReporterOptions {
  int rank = 0;
  int world_size = 1;
  ProcessGroup* world = nullptr;  // null for a single process
  int total_steps = 0;
  std::string tensorboard_dir;    // empty: no event file
  std::string metrics_jsonl;      // empty: no JSONL file
  double straggler_factor = 1.5;  // <= 0: no gather, no spread, no warning
  int straggler_window = 20;      // steps (whole gathers: rounded down to a multiple of every)
  int straggler_every = 10;       // steps between gathers
  // Straggler warnings (rank 0). Default: stderr.
  std::function<void(const std::string&)> log;
};

// One step's numbers as the trainer has them; Record turns them into tags.
struct StepScalars {
  int step = 0;
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  double items_per_s = 0;
  std::string unit;  // "tokens", "images": the throughput tag's name
  double mfu = 0;    // fraction; 0: unknown, not recorded
  double step_ms = 0;
  std::optional<double> loss_scale;  // fp16 runs
  std::optional<double> eval_loss;   // steps that evaluated
};

class StepReporter {
 public:
  static absl::StatusOr<std::unique_ptr<StepReporter>> Create(ReporterOptions options);

  // Every rank, once per optimizer step, at the same point of the step.
  // `step_ms`: the step's wall time; `busy_ms`: that minus the time spent
  // waiting on collectives.
  absl::Status EndStep(int step, double step_ms, double busy_ms);

  // " (6%)", to follow "step 120/2000".
  std::string PercentText() const;
  // " | eta 3m12s", plus " | slowest r3 +18%" with several ranks.
  std::string LineSuffix() const;

  // Rank 0: the step's record to every sink. Other ranks: nothing.
  absl::Status Record(const StepScalars& s);
  // Rank 0 with --tensorboard_dir: a PNG as an image summary. Otherwise
  // nothing.
  absl::Status WriteImage(int step, const std::string& tag, const std::string& png, int height,
                          int width, int channels);
  absl::Status Flush();

  const Progress& progress() const { return progress_; }
  Spread spread() const { return straggler_.spread(); }
  // The scalar tags Record writes for `s` (the same list every sink gets).
  std::vector<Scalar> Scalars(const StepScalars& s) const;

 private:
  explicit StepReporter(ReporterOptions options);

  ReporterOptions options_;
  Progress progress_;
  StragglerDetector straggler_;
  std::vector<std::unique_ptr<MetricsSink>> sinks_;
  EventFileWriter* events_ = nullptr;  // the TensorBoard sink in sinks_, if any
  std::optional<std::chrono::steady_clock::time_point> last_end_;
  double busy_sum_ms_ = 0;  // since the last gather
  int busy_steps_ = 0;
};

}  // namespace anvil::metrics

// MetricsSink: where the trainer's per-step numbers go besides the console
// (TensorBoard event files, a JSONL file). The trainer builds one
// StepRecord per optimizer step (after that step's evaluation, when there is
// one) and hands it to every sink; a sink never talks to other ranks and
// only rank 0 has sinks.
// Tags are TensorBoard's slash-separated names: "train/loss", "train/lr",
// "train/grad_norm", "train/tokens_per_s" or "train/images_per_s",
// "train/step_ms", "train/mfu" (when the peak is known), "train/loss_scale"
// (fp16 only), "train/straggler_lag" (several ranks), "eval/loss" (steps
// that evaluated).
// Invariant: a record's tags are unique and always in this order (those
// that do not apply to a step, such as eval/loss, are left out).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace anvil::metrics {

struct Scalar {
  std::string tag;
  double value = 0;
};

struct StepRecord {
  int64_t step = 0;        // 1-based count of completed optimizer steps
  double wall_time = 0;    // seconds since the Unix epoch
  std::vector<Scalar> scalars;
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  virtual absl::Status Write(const StepRecord& record) = 0;
  // Makes everything written so far visible to readers of the file.
  virtual absl::Status Flush() = 0;
};

}  // namespace anvil::metrics

// The diffusion process a run config names (its DiffusionConfig), read in
// one place for everything that must agree on it: the training noiser (the
// data source), the `sample` tool and the trainer's sample grids.
// Unset fields keep ScheduleOptions' and Prediction's defaults, so a
// checkpoint from before a field existed reads as it was trained.
#pragma once

#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "runtime/diffusion/prediction.h"
#include "runtime/diffusion/schedule.h"

namespace anvil::diffusion {

struct ProcessSettings {
  ScheduleOptions schedule;
  Prediction prediction = Prediction::kEps;
};

// Errors name the flag (--schedule, --prediction) and the bad value.
absl::StatusOr<ProcessSettings> ProcessFromConfig(const proto::DiffusionConfig& dc);

}  // namespace anvil::diffusion

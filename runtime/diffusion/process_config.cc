#include "runtime/diffusion/process_config.h"

#include "common/status_macros.h"

namespace anvil::diffusion {

absl::StatusOr<ProcessSettings> ProcessFromConfig(const proto::DiffusionConfig& dc) {
  ProcessSettings p;
  if (!dc.schedule().empty()) {
    ASSIGN_OR_RETURN(p.schedule.kind, ParseScheduleKind(dc.schedule()));
  }
  if (dc.has_timesteps()) p.schedule.timesteps = dc.timesteps();
  if (!dc.prediction().empty()) {
    ASSIGN_OR_RETURN(p.prediction, ParsePrediction(dc.prediction()));
  }
  return p;
}

}  // namespace anvil::diffusion

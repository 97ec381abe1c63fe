// Whether a run may resume from a checkpoint saved under another config.
//
// Each TrainConfig field declares its resume policy in proto/config.proto
// (FieldSpec.resume): RESUME_MATCH fields (the model's shape) must match, and
// a mismatch is an error naming the flag and both values; RESUME_FREE fields
// (logging, eval cadence, steps, threads, checkpoint settings, the sharding
// strategy and dtypes: checkpoints reshard) may differ silently;
// RESUME_REPORT fields (data, optimiser, seed, accumulation) may differ too,
// but are reported, because the resumed run then no longer equals the
// uninterrupted one. A field the saved config lacks (saved before the field
// existed) compares as its default.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/config.pb.h"

namespace anvil::ckpt {

// `changed` receives "--lr 0.003 -> 0.001" for each reported difference.
absl::Status CheckResumeConfig(const proto::TrainConfig& saved, const proto::TrainConfig& now,
                               const std::string& checkpoint_name,
                               std::vector<std::string>* changed);

// One line when a checkpoint saved by `saved_world` ranks with
// `saved_sharding` resumes under another world size or strategy (empty when
// both match): what changes, and what it means for the global batch (tokens
// per optimizer step scale with the world size; the data order and the
// learning-rate schedule do not follow).
std::string DescribeResumeLayout(const proto::TrainConfig& saved, int saved_world,
                                 const proto::TrainConfig& now, int world);

}  // namespace anvil::ckpt

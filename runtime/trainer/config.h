// The run config: one schema (proto/config.proto) for flags, config files and
// checkpoints; its defaults and per-field policies are read through the
// descriptor (runtime/config/schema.h, DefaultTrainConfig()), and `train`'s
// flags are generated from it (train_flags.h).
//
// Precedence, lowest first: the schema's defaults, a text-format config file
// (--config), then flags given on the command line.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "runtime/config/schema.h"

namespace anvil {

// Merges a text-format TrainConfig file. Errors name the file, line and column.
absl::Status MergeConfigFile(const std::string& path, proto::TrainConfig* config);

// Checks every value; errors name the flag (--seq_len ...) and what is wrong.
// Strategy and dtypes go through the parsers the engine uses
// (ParseShardingStrategy, ParseFloatDType), the save signal through
// ckpt::ParseSignalName.
absl::Status ValidateTrainConfig(const proto::TrainConfig& config);

// The up-front memory bound (part of ValidateTrainConfig): parameter state
// and activation bytes computed from the config, checked against this
// machine's physical memory before anything is allocated. One-line error.
absl::Status CheckFitsInMemory(const proto::TrainConfig& config);

// The model part of ValidateTrainConfig: --model names a registered kind and
// the model's spec accepts its fields (shape, fields the kind does not
// support, the data shape they imply).
absl::Status ValidateModelConfig(const proto::TrainConfig& config);

// Text format, for logs and checkpoints.
std::string ConfigToText(const proto::TrainConfig& config);

}  // namespace anvil

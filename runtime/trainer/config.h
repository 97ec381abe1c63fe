// The run config: one schema (proto/config.proto) for flags, config files and
// checkpoints.
//
// Precedence, lowest first: the flags' defaults, a text-format config file
// (--config), then flags given on the command line. Flags are named after the
// leaf fields of TrainConfig (`--n_layer` sets model.n_layer), which must
// therefore be unique; the mapping is done by proto reflection, so adding a
// field and a flag of the same name is all it takes.
#pragma once

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace anvil {

enum class FlagValues { kDefaults, kSpecifiedOnly };

// Copies Abseil flag values into the leaf fields of the same name: their
// defaults, or the current values of the flags named in `specified`. Fields
// with no flag are left alone. Errors name the flag whose value does not parse.
absl::Status ApplyFlags(proto::TrainConfig* config, FlagValues which,
                        const absl::flat_hash_set<std::string>& specified = {});

// Names of the flags an argv sets (--name, --name=v, -name, --noname).
// The Debian Abseil keeps "was this flag given" private, so main asks argv.
absl::flat_hash_set<std::string> FlagsNamedIn(int argc, char** argv);

// Merges a text-format TrainConfig file. Errors name the file, line and column.
absl::Status MergeConfigFile(const std::string& path, proto::TrainConfig* config);

// Checks every value; errors name the flag (--seq_len ...) and what is wrong.
absl::Status ValidateTrainConfig(const proto::TrainConfig& config);

// The up-front memory bound (part of ValidateTrainConfig): parameter state
// and activation bytes computed from the config, checked against this
// machine's physical memory before anything is allocated. One-line error.
absl::Status CheckFitsInMemory(const proto::TrainConfig& config);

// The model part of ValidateTrainConfig: --model names a registered kind and
// the model's spec accepts its fields (and the data shape they imply).
absl::Status ValidateModelConfig(const proto::TrainConfig& config);

// Text format, for logs and checkpoints.
std::string ConfigToText(const proto::TrainConfig& config);

}  // namespace anvil

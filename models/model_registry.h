// The model registry: --model kind -> ModelSpec.
//
// The built-in models (models/builtin_models.cc) are registered on first
// use; RegisterModel adds others (a model living in tests/, a plug-in). The
// registry is process-wide and thread-safe; specs are never removed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_spec.h"

namespace anvil {

// Fails when the kind is empty, already registered, or the spec lacks one of
// validate, describe, param_count, activation_bytes, create.
absl::Status RegisterModel(ModelSpec spec);

// The spec of `kind`, or one error line listing the registered kinds.
absl::StatusOr<const ModelSpec*> FindModel(std::string_view kind);

// Registered kinds, sorted.
std::vector<std::string> ModelKinds();

// Builds the model of config.model() with the run's micro-batch shape and
// mixed-precision policy (the one way the runtime creates models).
absl::StatusOr<std::unique_ptr<UnitModel>> CreateModel(const proto::TrainConfig& config,
                                                       kernels::Device* device);

// Defined in builtin_models.cc: registers the models that ship with anvil.
void RegisterBuiltinModels();

}  // namespace anvil

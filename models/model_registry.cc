#include "models/model_registry.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace anvil {
namespace {

struct Registry {
  absl::Mutex mu;
  // std::map: node-based, so a returned spec pointer stays valid.
  std::map<std::string, ModelSpec, std::less<>> specs ABSL_GUARDED_BY(mu);
};

Registry& Get() {
  static Registry* r = new Registry;
  return *r;
}

void EnsureBuiltins() {
  static std::once_flag once;
  std::call_once(once, [] { RegisterBuiltinModels(); });
}

}  // namespace

absl::Status RegisterModel(ModelSpec spec) {
  if (spec.kind.empty()) return absl::InvalidArgumentError("a model spec needs a kind");
  if (!spec.validate || !spec.describe || !spec.param_count || !spec.activation_bytes ||
      !spec.create) {
    return absl::InvalidArgumentError(
        absl::StrCat("model spec '", spec.kind,
                     "' needs validate, describe, param_count, activation_bytes and create"));
  }
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  if (r.specs.count(spec.kind) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("model '", spec.kind, "' is already registered"));
  }
  std::string kind = spec.kind;
  r.specs.emplace(std::move(kind), std::move(spec));
  return absl::OkStatus();
}

absl::StatusOr<const ModelSpec*> FindModel(std::string_view kind) {
  EnsureBuiltins();
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  auto it = r.specs.find(kind);
  if (it != r.specs.end()) return &it->second;
  std::vector<std::string> kinds;
  for (const auto& [k, s] : r.specs) kinds.push_back(k);
  return absl::InvalidArgumentError(absl::StrCat("--model must be one of ",
                                                 absl::StrJoin(kinds, ", "), ", got '", std::string(kind),
                                                 "'"));
}

std::vector<std::string> ModelKinds() {
  EnsureBuiltins();
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  std::vector<std::string> kinds;
  for (const auto& [k, s] : r.specs) kinds.push_back(k);
  return kinds;
}

absl::StatusOr<std::unique_ptr<UnitModel>> CreateModel(const proto::TrainConfig& config,
                                                       kernels::Device* device) {
  absl::StatusOr<const ModelSpec*> spec = FindModel(config.model().kind());
  if (!spec.ok()) return spec.status();
  ModelBuildOptions o;
  o.max_batch = config.data().batch_size();
  o.max_seq = config.data().seq_len();
  // bf16 parameters mean bf16 compute; fp16 keeps fp32 compute on rounded
  // weights (no fp16 GEMM on most CPUs) with dynamic loss scaling.
  o.compute_dtype = config.param_dtype() == "bf16" ? DType::kBF16 : DType::kF32;
  o.recompute = config.recompute() == "unit";
  return (*spec)->create(config.model(), o, device);
}

}  // namespace anvil

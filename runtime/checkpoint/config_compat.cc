#include "runtime/checkpoint/config_compat.h"

#include "absl/strings/str_cat.h"
#include "runtime/config/schema.h"

namespace anvil::ckpt {
namespace {

int64_t TokensPerStep(const proto::TrainConfig& c, int world) {
  return static_cast<int64_t>(c.data().batch_size()) * c.data().seq_len() * c.grad_accum() * world;
}

}  // namespace

std::string DescribeResumeLayout(const proto::TrainConfig& saved, int saved_world,
                                 const proto::TrainConfig& now, int world) {
  const bool world_changed = saved_world != world;
  const bool strategy_changed = saved.sharding() != now.sharding();
  if (!world_changed && !strategy_changed) return "";
  std::string line = "resuming under another layout:";
  if (world_changed) absl::StrAppend(&line, " world size ", saved_world, " -> ", world);
  if (strategy_changed) {
    absl::StrAppend(&line, world_changed ? "," : "", " sharding ", saved.sharding(), " -> ",
                    now.sharding());
  }
  const int64_t before = TokensPerStep(saved, saved_world), after = TokensPerStep(now, world);
  if (before != after) {
    absl::StrAppend(&line, "; the global batch is now ", after, " tokens per step (was ", before,
                    "): the same learning-rate schedule over a different batch, and each rank "
                    "reads another slice of the data, so the run differs from an "
                    "uninterrupted one");
  } else {
    absl::StrAppend(&line, "; the global batch stays ", after,
                    " tokens per step (the state is resharded; sums may round differently)");
  }
  return line;
}

absl::Status CheckResumeConfig(const proto::TrainConfig& saved, const proto::TrainConfig& now,
                               const std::string& checkpoint_name,
                               std::vector<std::string>* changed) {
  for (const ConfigLeaf& leaf : ConfigLeaves()) {
    const proto::ResumePolicy policy = leaf.spec().resume();
    if (policy == proto::RESUME_FREE) continue;
    // Unset fields read as their defaults: a checkpoint saved before a field
    // existed ran with what its default now says.
    const std::string a = EffectiveValueText(saved, leaf), b = EffectiveValueText(now, leaf);
    if (a == b) continue;
    if (policy == proto::RESUME_REPORT) {
      changed->push_back(absl::StrCat("--", leaf.flag(), " ", a, " -> ", b));
      continue;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint ", checkpoint_name, " was saved with --", leaf.flag(), "=", a,
        " but this run has --", leaf.flag(), "=", b,
        leaf.group() == "model"
            ? ": the model shape must match to resume (export it and use --init_from to start a "
              "different model from its weights)"
            : ": this setting must match to resume"));
  }
  return absl::OkStatus();
}

}  // namespace anvil::ckpt

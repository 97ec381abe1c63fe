#include "runtime/checkpoint/config_compat.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace anvil::ckpt {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const absl::flat_hash_set<std::string>& Harmless() {
  static const auto* s = new absl::flat_hash_set<std::string>{
      "log_every", "eval_every",     "eval_batches",     "threads",
      "steps",     "checkpoint_dir", "checkpoint_every", "keep_last",
      "sharding",  "param_dtype",    "reduce_dtype",     "val_pattern",
      "init_from", "save_signal",    "checkpoint_async", "bucket_mb",
      "on_save_error", "resume_from", "recompute"};
  return *s;
}

std::string Value(const Message& m, const FieldDescriptor* f) {
  std::string out;
  google::protobuf::TextFormat::PrintFieldValueToString(m, f, -1, &out);
  return out;
}

absl::Status Walk(const Message& saved, const Message& now, bool model, const std::string& name,
                  std::vector<std::string>* changed) {
  const auto* d = saved.GetDescriptor();
  const auto* rs = saved.GetReflection();
  const auto* rn = now.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const bool is_model = f->name() == "model";
      absl::Status s =
          Walk(rs->GetMessage(saved, f), rn->GetMessage(now, f), is_model, name, changed);
      if (!s.ok()) return s;
      continue;
    }
    const std::string a = Value(saved, f), b = Value(now, f);
    if (a == b) continue;
    if (model) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint ", name, " was saved with --", f->name(), "=", a,
                       " but this run has --", f->name(), "=", b,
                       ": the model shape must match to resume (export it and use "
                       "--init_from to start a different model from its weights)"));
    }
    if (Harmless().contains(f->name())) continue;
    changed->push_back(absl::StrCat("--", f->name(), " ", a, " -> ", b));
  }
  return absl::OkStatus();
}

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
  return Walk(saved, now, false, checkpoint_name, changed);
}

}  // namespace anvil::ckpt

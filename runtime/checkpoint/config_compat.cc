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
      "recompute"};
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

}  // namespace

absl::Status CheckResumeConfig(const proto::TrainConfig& saved, const proto::TrainConfig& now,
                               const std::string& checkpoint_name,
                               std::vector<std::string>* changed) {
  return Walk(saved, now, false, checkpoint_name, changed);
}

}  // namespace anvil::ckpt

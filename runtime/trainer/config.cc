#include "runtime/trainer/config.h"

#include <fstream>
#include <iterator>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace anvil {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status SetField(Message* msg, const FieldDescriptor* f, const std::string& value) {
  const Reflection* r = msg->GetReflection();
  auto bad = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat("--", f->name(), ": cannot parse '", value, "' as ", f->type_name()));
  };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad();
      r->SetInt32(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad();
      r->SetInt64(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad();
      r->SetUInt64(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(value, &v)) return bad();
      r->SetFloat(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(value, &v)) return bad();
      r->SetDouble(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (!absl::SimpleAtob(value, &v)) return bad();
      r->SetBool(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING:
      r->SetString(msg, f, value);
      break;
    default:
      return absl::InternalError(absl::StrCat("config field ", f->name(), " has an unsupported type"));
  }
  return absl::OkStatus();
}

absl::Status ApplyFlagsTo(Message* msg, FlagValues which,
                          const absl::flat_hash_set<std::string>& specified) {
  const auto* d = msg->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      RETURN_IF_ERROR(
          ApplyFlagsTo(msg->GetReflection()->MutableMessage(msg, f), which, specified));
      continue;
    }
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(f->name());
    if (flag == nullptr) continue;
    if (which == FlagValues::kSpecifiedOnly && !specified.contains(f->name())) continue;
    const std::string value =
        which == FlagValues::kDefaults ? flag->DefaultValue() : flag->CurrentValue();
    RETURN_IF_ERROR(SetField(msg, f, value));
  }
  return absl::OkStatus();
}

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors.push_back(absl::StrCat("line ", line + 1, ":", column + 1, ": ", message));
  }
  std::vector<std::string> errors;
};

absl::Status InRange(const char* flag, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be in [", lo, ", ", hi, "], got ", v));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyFlags(proto::TrainConfig* config, FlagValues which,
                        const absl::flat_hash_set<std::string>& specified) {
  return ApplyFlagsTo(config, which, specified);
}

absl::flat_hash_set<std::string> FlagsNamedIn(int argc, char** argv) {
  absl::flat_hash_set<std::string> names;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (!a.starts_with("-")) continue;
    a.remove_prefix(a.starts_with("--") ? 2 : 1);
    a = a.substr(0, a.find('='));
    names.insert(std::string(a));
    if (a.starts_with("no")) names.insert(std::string(a.substr(2)));  // --noflag
  }
  return names;
}

absl::Status MergeConfigFile(const std::string& path, proto::TrainConfig* config) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--config ", path, ": cannot open"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  proto::TrainConfig from_file;
  if (!parser.ParseFromString(text, &from_file)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--config ", path, ": ", absl::StrJoin(errors.errors, "; ")));
  }
  config->MergeFrom(from_file);
  return absl::OkStatus();
}

absl::Status ValidateTrainConfig(const proto::TrainConfig& c) {
  if (c.model().kind() != "gpt") {
    return absl::InvalidArgumentError(absl::StrCat("--kind must be gpt, got '", c.model().kind(), "'"));
  }
  RETURN_IF_ERROR(ValidateGptConfig(ToGptConfig(c.model())));
  const auto& d = c.data();
  if (d.train_pattern().empty()) return absl::InvalidArgumentError("--train_pattern is empty");
  if (d.batch_size() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--batch_size must be > 0, got ", d.batch_size()));
  }
  if (d.seq_len() <= 0 || d.seq_len() > c.model().max_seq_len()) {
    return absl::InvalidArgumentError(absl::StrCat("--seq_len (", d.seq_len(),
                                                   ") must be in 1..--max_seq_len (",
                                                   c.model().max_seq_len(), ")"));
  }
  const auto& o = c.optim();
  RETURN_IF_ERROR(InRange("lr", o.lr(), 0, 10));
  RETURN_IF_ERROR(InRange("min_lr_ratio", o.min_lr_ratio(), 0, 1));
  RETURN_IF_ERROR(InRange("weight_decay", o.weight_decay(), 0, 10));
  RETURN_IF_ERROR(InRange("beta1", o.beta1(), 0, 0.999999));
  RETURN_IF_ERROR(InRange("beta2", o.beta2(), 0, 0.999999999));
  RETURN_IF_ERROR(InRange("eps", o.eps(), 0, 1));
  RETURN_IF_ERROR(InRange("grad_clip", o.grad_clip(), -1, 1e9));
  if (o.warmup_steps() < 0) return absl::InvalidArgumentError("--warmup_steps must be >= 0");
  if (c.steps() < 0) return absl::InvalidArgumentError(absl::StrCat("--steps must be >= 0, got ", c.steps()));
  if (c.grad_accum() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--grad_accum must be > 0, got ", c.grad_accum()));
  }
  if (c.eval_every() < 0) return absl::InvalidArgumentError("--eval_every must be >= 0");
  if (c.eval_every() > 0 && c.data().val_pattern().empty()) {
    return absl::InvalidArgumentError("--eval_every is set but --val_pattern is empty");
  }
  if (c.eval_batches() <= 0) return absl::InvalidArgumentError("--eval_batches must be > 0");
  if (c.log_every() <= 0) return absl::InvalidArgumentError("--log_every must be > 0");
  if (c.threads() < 0) return absl::InvalidArgumentError("--threads must be >= 0 (0 = all cores)");
  if (c.has_bucket_mb() && (c.bucket_mb() <= 0 || c.bucket_mb() > 4096)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--bucket_mb must be in 1..4096, got ", c.bucket_mb()));
  }
  const std::string& s = c.sharding();
  if (s != "NO_SHARD" && s != "SHARD_GRAD_OP" && s != "FULL_SHARD" && s != "HYBRID_SHARD") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--sharding must be NO_SHARD, SHARD_GRAD_OP, FULL_SHARD or HYBRID_SHARD, got '", s, "'"));
  }
  for (auto [flag, v] : {std::pair{"param_dtype", &c.param_dtype()},
                         std::pair{"reduce_dtype", &c.reduce_dtype()}}) {
    if (*v != "fp32" && *v != "bf16" && *v != "fp16") {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " must be fp32, bf16 or fp16, got '", *v, "'"));
    }
  }
  if (c.has_recompute() && c.recompute() != "none" && c.recompute() != "unit") {
    return absl::InvalidArgumentError(
        absl::StrCat("--recompute must be none or unit, got '", c.recompute(), "'"));
  }
  return absl::OkStatus();
}

GptConfig ToGptConfig(const proto::ModelConfig& m) {
  GptConfig g;
  g.n_layer = m.n_layer();
  g.n_head = m.n_head();
  g.n_embd = m.n_embd();
  g.max_seq_len = m.max_seq_len();
  g.vocab_size = m.vocab_size();
  return g;
}

std::string ConfigToText(const proto::TrainConfig& config) {
  std::string out;
  google::protobuf::TextFormat::PrintToString(config, &out);
  return out;
}

}  // namespace anvil

#include "runtime/trainer/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "models/model_registry.h"
#include "runtime/data/data_source.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "runtime/checkpoint/save_signal.h"
#include "runtime/sharding/strategy.h"

namespace anvil {
namespace {

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors.push_back(absl::StrCat("line ", line + 1, ":", column + 1, ": ", message));
  }
  std::vector<std::string> errors;
};

// A config file is small text; anything else is a mistake worth naming.
constexpr off_t kMaxConfigFileBytes = 16 << 20;

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  auto fail = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--config ", path, ": ", why));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(absl::StrCat("cannot open (", std::strerror(errno), ")"));
  struct stat st {};
  std::string text;
  absl::Status status;
  if (::fstat(fd, &st) != 0) {
    status = fail(std::strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    status = fail("is a directory, not a text-format TrainConfig file");
  } else if (!S_ISREG(st.st_mode)) {
    status = fail("is not a regular file");
  } else if (st.st_size > kMaxConfigFileBytes) {
    status = fail(absl::StrCat("is ", st.st_size, " bytes; a config file is at most ",
                               kMaxConfigFileBytes, " bytes of text"));
  } else {
    text.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        status = fail(n < 0 ? std::strerror(errno) : "shrank while being read");
        break;
      }
      got += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return text;
}

absl::Status InRange(const char* flag, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be in [", lo, ", ", hi, "], got ", v));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MergeConfigFile(const std::string& path, proto::TrainConfig* config) {
  ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(path));
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
  const auto& d = c.data();
  if (d.batch_size() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--batch_size must be > 0, got ", d.batch_size()));
  }
  RETURN_IF_ERROR(ValidateModelConfig(c));
  ASSIGN_OR_RETURN(const ModelSpec* spec, FindModel(c.model().kind()));
  if (spec->data == DataKind::kTokens && d.train_pattern().empty()) {
    return absl::InvalidArgumentError("--train_pattern is empty");
  }
  const auto& o = c.optim();
  RETURN_IF_ERROR(InRange("lr", o.lr(), 0, 10));
  RETURN_IF_ERROR(InRange("min_lr_ratio", o.min_lr_ratio(), 0, 1));
  RETURN_IF_ERROR(InRange("weight_decay", o.weight_decay(), 0, 10));
  RETURN_IF_ERROR(InRange("beta1", o.beta1(), 0, 0.999999));
  RETURN_IF_ERROR(InRange("beta2", o.beta2(), 0, 0.999999999));
  RETURN_IF_ERROR(InRange("eps", o.eps(), 0, 1));
  RETURN_IF_ERROR(InRange("grad_clip", o.grad_clip(), -1, 1e9));
  RETURN_IF_ERROR(InRange("ema_decay", o.ema_decay(), 0, 0.99999999));
  if (o.warmup_steps() < 0) return absl::InvalidArgumentError("--warmup_steps must be >= 0");
  if (c.steps() < 0) return absl::InvalidArgumentError(absl::StrCat("--steps must be >= 0, got ", c.steps()));
  if (c.grad_accum() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--grad_accum must be > 0, got ", c.grad_accum()));
  }
  if (c.eval_every() < 0) return absl::InvalidArgumentError("--eval_every must be >= 0");
  if (c.eval_every() > 0 && !HasValidationData(spec->data, c)) {
    return absl::InvalidArgumentError(spec->data == DataKind::kTokens
                                          ? "--eval_every is set but --val_pattern is empty"
                                          : "--eval_every is set but there is no validation data "
                                            "(--val_images or --val_image_root)");
  }
  if (c.eval_batches() <= 0) return absl::InvalidArgumentError("--eval_batches must be > 0");
  if (c.log_every() <= 0) return absl::InvalidArgumentError("--log_every must be > 0");
  // More threads than CPUs only oversubscribes; tens of thousands exhaust
  // thread stacks inside OpenMP and OpenBLAS.
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (c.threads() < 0 || c.threads() > cpus) {
    return absl::InvalidArgumentError(absl::StrCat("--threads must be in 0..", cpus,
                                                   " (this machine's CPUs; 0 = all), got ",
                                                   c.threads()));
  }
  if (c.has_bucket_mb() && (c.bucket_mb() <= 0 || c.bucket_mb() > 4096)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--bucket_mb must be in 1..4096, got ", c.bucket_mb()));
  }
  if (!c.checkpoint_dir().empty()) {
    std::error_code ec;
    const auto st = std::filesystem::status(c.checkpoint_dir(), ec);
    if (!ec && std::filesystem::exists(st) && !std::filesystem::is_directory(st)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--checkpoint_dir ", c.checkpoint_dir(), " exists and is not a directory"));
    }
  }
  if (c.has_on_save_error() && c.on_save_error() != "stop" && c.on_save_error() != "continue") {
    return absl::InvalidArgumentError(
        absl::StrCat("--on_save_error must be stop or continue, got '", c.on_save_error(), "'"));
  }
  RETURN_IF_ERROR(CheckFitsInMemory(c));
  RETURN_IF_ERROR(ParseShardingStrategy(c.sharding()).status());
  for (auto [flag, v] : {std::pair{"param_dtype", &c.param_dtype()},
                         std::pair{"reduce_dtype", &c.reduce_dtype()}}) {
    if (absl::Status s = ParseFloatDType(*v).status(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", s.message()));
    }
  }
  if (!c.save_signal().empty()) RETURN_IF_ERROR(ckpt::ParseSignalName(c.save_signal()).status());
  if (c.has_recompute() && c.recompute() != "none" && c.recompute() != "unit") {
    return absl::InvalidArgumentError(
        absl::StrCat("--recompute must be none or unit, got '", c.recompute(), "'"));
  }
  if (c.straggler_factor() != 0 && !(c.straggler_factor() > 1 && c.straggler_factor() <= 1e6)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--straggler_factor must be 0 (off) or in (1, 1e6], got ", c.straggler_factor()));
  }
  // The window and period matter only when the report is on (a config
  // built field by field, with no defaults, has it off).
  const bool straggler = c.straggler_factor() != 0;
  if (straggler && (c.straggler_window() <= 0 || c.straggler_window() > 100000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--straggler_window must be in 1..100000, got ", c.straggler_window()));
  }
  if (straggler && (c.straggler_every() <= 0 || c.straggler_every() > c.straggler_window())) {
    return absl::InvalidArgumentError(absl::StrCat("--straggler_every must be in 1..",
                                                   c.straggler_window(),
                                                   " (--straggler_window), got ",
                                                   c.straggler_every()));
  }
  if (c.diffusion().sample_every() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sample_every must be >= 0, got ", c.diffusion().sample_every()));
  }
  if (c.diffusion().sample_every() > 0 && c.tensorboard_dir().empty()) {
    return absl::InvalidArgumentError(
        "--sample_every writes sample grids into --tensorboard_dir, which is not set");
  }
  if (!c.tensorboard_dir().empty()) {
    std::error_code ec;
    const auto st = std::filesystem::status(c.tensorboard_dir(), ec);
    if (!ec && std::filesystem::exists(st) && !std::filesystem::is_directory(st)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tensorboard_dir ", c.tensorboard_dir(), " exists and is not a directory"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateModelConfig(const proto::TrainConfig& c) {
  ASSIGN_OR_RETURN(const ModelSpec* spec, FindModel(c.model().kind()));
  return spec->validate(c);
}

absl::Status CheckFitsInMemory(const proto::TrainConfig& c) {
  ASSIGN_OR_RETURN(const ModelSpec* spec, FindModel(c.model().kind()));
  const double params = spec->param_count(c.model());
  // fp32 weights, gradients, AdamW's two moments and the EMA; sharding
  // divides some of it, but one rank may hold it all (NO_SHARD), so bound the
  // worst case.
  const double state_bytes = params * (c.optim().ema_decay() > 0 ? 20 : 16);
  const double act_bytes = spec->activation_bytes(c);
  const double need = state_bytes + act_bytes;
  const double have = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) *
                      static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (have > 0 && need > have) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the model does not fit in memory: %.4g parameters need %.3g GB (weights, gradients, "
        "AdamW state%s) and --batch_size %d x --seq_len %d needs %.3g GB of activations, but this "
        "machine has %.3g GB",
        params, state_bytes / 1e9, c.optim().ema_decay() > 0 ? ", EMA" : "",
        c.data().batch_size(), c.data().seq_len(), act_bytes / 1e9, have / 1e9));
  }
  return absl::OkStatus();
}

std::string ConfigToText(const proto::TrainConfig& config) {
  std::string out;
  google::protobuf::TextFormat::PrintToString(config, &out);
  return out;
}

}  // namespace anvil

// train: trains a registered model (--model gpt, ...) on its data.
//
//   train --train_pattern 'data/x/train_*.bin' --val_pattern 'data/x/val_*.bin'
//   train --config run.textproto --steps 100
//
// Every flag below is also a field of proto/config.proto (TrainConfig), so a
// --config file (text format) can set the same things; flags given on the
// command line win. Exit codes: 0 done, 1 runtime error, 2 bad input,
// 3 a checkpoint save failed (committed checkpoints are kept; see
// --on_save_error), 75 stopped by SIGINT/SIGTERM (or --save_signal) at a
// step boundary, after saving a checkpoint when --checkpoint_dir is set.
//
// With --checkpoint_dir, a start resumes from the newest checkpoint there
// that verifies (any world size and strategy), so rerunning the same command
// after a crash or preemption continues the run. The directory is locked for
// the job; another run's checkpoints are resumed only with --resume_from.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/command_line.h"
#include "kernels/device.h"
#include "kernels/cpu/peak.h"
#include "runtime/checkpoint/save_signal.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/distributed.h"
#include "runtime/trainer/stop_signal.h"
#include "runtime/trainer/trainer.h"

// Model.
ABSL_FLAG(std::string, kind, "gpt", "Model kind (registered in models/: gpt, ...).");
ABSL_FLAG(int32_t, n_layer, 4, "Transformer blocks (L).");
ABSL_FLAG(int32_t, n_head, 4, "Attention heads (H).");
ABSL_FLAG(int32_t, n_embd, 128, "Embedding width (C), divisible by n_head.");
ABSL_FLAG(int32_t, max_seq_len, 128, "Learned positions (T).");
ABSL_FLAG(int32_t, vocab_size, 256, "Vocabulary size (V); 256 for byte-level shards.");
// Data.
ABSL_FLAG(std::string, train_pattern, "data/licenses/train_*.bin", "Glob of training shards.");
ABSL_FLAG(std::string, val_pattern, "data/licenses/val_*.bin", "Glob of validation shards.");
ABSL_FLAG(int32_t, batch_size, 16, "Sequences per micro-batch (per rank).");
ABSL_FLAG(int32_t, seq_len, 128, "Tokens per sequence (<= max_seq_len).");
// Optimisation.
ABSL_FLAG(float, lr, 3e-3f, "Peak learning rate.");
ABSL_FLAG(float, min_lr_ratio, 0.1f, "Cosine decay floor as a fraction of lr.");
ABSL_FLAG(int32_t, warmup_steps, 20, "Linear warmup steps.");
ABSL_FLAG(float, weight_decay, 0.1f, "AdamW decoupled weight decay (matrices only).");
ABSL_FLAG(float, beta1, 0.9f, "AdamW beta1.");
ABSL_FLAG(float, beta2, 0.95f, "AdamW beta2.");
ABSL_FLAG(float, eps, 1e-8f, "AdamW epsilon.");
ABSL_FLAG(float, grad_clip, 1.0f, "Global gradient-norm clip; <= 0 disables.");
// Run.
ABSL_FLAG(int32_t, steps, 1000, "Optimizer steps.");
ABSL_FLAG(int32_t, grad_accum, 1, "Micro-batches per optimizer step.");
ABSL_FLAG(uint64_t, seed, 1337, "Seed for initialisation and data order.");
ABSL_FLAG(int32_t, eval_every, 100, "Evaluate on the val split every N steps (0: never).");
ABSL_FLAG(int32_t, eval_batches, 16, "Batches per evaluation.");
ABSL_FLAG(int32_t, log_every, 10, "Log a step line every N steps.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores).");
ABSL_FLAG(std::string, sharding, "NO_SHARD", "NO_SHARD | SHARD_GRAD_OP | FULL_SHARD | HYBRID_SHARD.");
ABSL_FLAG(std::string, param_dtype, "fp32",
          "Parameter dtype: fp32 | bf16 (bf16 compute, fp32 master weights) | fp16 (fp16-rounded "
          "weights, fp32 compute, loss scaling).");
ABSL_FLAG(std::string, reduce_dtype, "fp32", "Gradient reduction dtype: fp32 | bf16 | fp16.");
ABSL_FLAG(std::string, checkpoint_dir, "", "Directory for checkpoints (empty: none).");
ABSL_FLAG(int32_t, checkpoint_every, 0, "Save every N steps (0: never).");
ABSL_FLAG(int32_t, keep_last, 3, "Checkpoints to keep.");
ABSL_FLAG(std::string, init_from, "",
          "safetensors file with Hugging Face GPT-2 weights to start from (ignored when "
          "resuming from --checkpoint_dir).");
ABSL_FLAG(std::string, save_signal, "",
          "Extra signal that saves and stops like SIGTERM, e.g. USR1 (Slurm --signal).");
ABSL_FLAG(bool, checkpoint_async, true,
          "Write checkpoints in the background (false: training waits for each commit).");
ABSL_FLAG(std::string, on_save_error, "stop",
          "A failed checkpoint save: stop (exit 3 after the current step; committed "
          "checkpoints are kept) | continue (log it and train on).");
ABSL_FLAG(std::string, resume_from, "",
          "Start from the newest checkpoint in this directory (another run's, read only) when "
          "--checkpoint_dir has none of this run.");
ABSL_FLAG(int32_t, bucket_mb, 4,
          "Gradient all-reduce bucket size in MiB (NO_SHARD; cross-node for HYBRID_SHARD).");
ABSL_FLAG(std::string, recompute, "none",
          "Activation recomputation: none | unit (rerun each unit's forward in backward).");
// Not part of the schema.
ABSL_FLAG(std::string, config, "", "Text-format TrainConfig file; flags given explicitly override it.");
ABSL_FLAG(bool, print_config, false, "Print the resolved config and exit.");
ABSL_FLAG(int32_t, dist_timeout_s, 300,
          "Seconds to wait for the store, the other ranks and every collective.");

namespace {

int BadInput(const absl::Status& s) {
  std::fprintf(stderr, "train: %s\n", std::string(s.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("train [--config FILE] [--flag=value ...]");
  const auto specified = anvil::FlagsNamedIn(argc, argv);
  // Unknown flags, unparsable values and stray arguments are bad input
  // (exit 2), not Abseil's exit 1.
  absl::StatusOr<std::vector<std::string>> positional = anvil::CheckCommandLine(argc, argv);
  if (!positional.ok()) return BadInput(positional.status());
  if (!positional->empty()) {
    return BadInput(absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument '", positional->front(), "' (train takes only --flags)")));
  }
  absl::ParseCommandLine(argc, argv);

  anvil::proto::TrainConfig config;
  if (absl::Status s = anvil::ApplyFlags(&config, anvil::FlagValues::kDefaults); !s.ok()) {
    return BadInput(s);
  }
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    if (absl::Status s = anvil::MergeConfigFile(path, &config); !s.ok()) return BadInput(s);
  }
  if (absl::Status s = anvil::ApplyFlags(&config, anvil::FlagValues::kSpecifiedOnly, specified); !s.ok()) {
    return BadInput(s);
  }
  if (absl::Status s = anvil::ValidateTrainConfig(config); !s.ok()) return BadInput(s);
  int save_signal = 0;
  if (const std::string& sig = config.save_signal(); !sig.empty()) {
    auto signo = anvil::ckpt::ParseSignalName(sig);
    if (!signo.ok()) return BadInput(signo.status());
    save_signal = *signo;
  }
  if (absl::GetFlag(FLAGS_print_config)) {
    std::printf("%s", anvil::ConfigToText(config).c_str());
    return 0;
  }

  auto env = anvil::ReadDistEnv();
  if (!env.ok()) return BadInput(env.status());
  auto device = anvil::kernels::MakeCpuDevice(config.threads());
  auto dist = anvil::Connect(*env, config, absl::Seconds(absl::GetFlag(FLAGS_dist_timeout_s)));
  if (!dist.ok()) {
    std::fprintf(stderr, "train: rank %d: %s\n", env->rank,
                 std::string(dist.status().message()).c_str());
    return 1;
  }
  const bool leader = env->rank == 0;
  anvil::TrainerOptions options;
  options.groups = dist->groups();
  options.rank = env->rank;
  options.world_size = env->world_size;
  options.store = dist->store;
  options.store_timeout = absl::Seconds(absl::GetFlag(FLAGS_dist_timeout_s));
  options.init_from = config.init_from();
  options.async_checkpoint = config.checkpoint_async();
  options.run_id = env->run_id;
  if (!leader) options.log = [](const std::string&) {};
  auto trainer = anvil::Trainer::Create(config, device.get(), options);
  if (!trainer.ok()) return BadInput(trainer.status());
  // Measured after the input checks, so bad input fails fast.
  (*trainer)->set_peak_flops(anvil::kernels::MeasureSgemmPeakGflops(config.threads()) * 1e9);
  const auto& m = config.model();
  if (leader) {
    std::printf("model: %s, %zu parameters | %d rank(s), %s, params %s, "
                "reduce %s | batch %d x %d x accum %d per rank | sgemm peak %.1f GFLOP/s per rank\n",
                (*trainer)->model_spec().describe(m).c_str(), (*trainer)->num_params(), env->world_size, config.sharding().c_str(),
                config.param_dtype().c_str(), config.reduce_dtype().c_str(),
                config.data().batch_size(), config.data().seq_len(), config.grad_accum(),
                (*trainer)->peak_flops() / 1e9);
    std::fflush(stdout);
  }
  anvil::InstallStopHandlers();
  if (save_signal != 0 && save_signal != SIGTERM && save_signal != SIGINT) {
    anvil::ckpt::InstallSaveSignal(save_signal);
  }
  auto stats = (*trainer)->Run();
  if (!stats.ok()) {
    std::fprintf(stderr, "train: rank %d: %s\n", env->rank,
                 std::string(stats.status().message()).c_str());
    return (*trainer)->save_failed() ? anvil::kExitSaveFailed : 1;
  }
  return (*trainer)->stopped() || anvil::StopRequested() ? anvil::kExitStopped : 0;
}

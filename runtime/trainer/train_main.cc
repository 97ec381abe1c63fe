// train: trains a registered model (--model gpt, ...) on its data.
//
//   train --train_pattern 'data/x/train_*.bin' --val_pattern 'data/x/val_*.bin'
//   train --config run.textproto --steps 100
//
// Every config flag is a field of proto/config.proto (TrainConfig), generated
// from its descriptor (`train --help` lists them), so a --config file (text
// format) can set the same things; flags given on the command line win. Exit codes: 0 done, 1 runtime error, 2 bad input,
// 3 a checkpoint save failed (committed checkpoints are kept; see
// --on_save_error), 75 stopped by SIGINT/SIGTERM (or --save_signal) at a
// step boundary, after saving a checkpoint when --checkpoint_dir is set.
//
// With --checkpoint_dir, a start resumes from the newest checkpoint there
// that verifies (any world size and strategy), so rerunning the same command
// after a crash or preemption continues the run. The directory is locked for
// the job; another run's checkpoints are resumed only with --resume_from.
//
// --device cpu|cuda|auto (runtime/trainer/device_select.h): under the
// launcher a cuda worker binds GPU LOCAL_RANK and its process groups are
// NCCL; a cuda request this machine cannot meet is bad input (exit 2, one
// line naming the problem), checked before anything is built.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "kernels/cpu/peak.h"
#include "kernels/device.h"
#include "runtime/checkpoint/save_signal.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/device_select.h"
#include "runtime/trainer/distributed.h"
#include "runtime/trainer/progress_reporter.h"
#include "runtime/trainer/stop_signal.h"
#include "runtime/trainer/train_flags.h"
#include "runtime/trainer/trainer.h"

namespace {

int BadInput(const absl::Status& s) {
  std::fprintf(stderr, "train: %s\n", std::string(s.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Flags come from the schema (train_flags.h): unknown flags, unparsable
  // values and stray arguments are bad input, exit 2 with one line.
  absl::StatusOr<anvil::TrainArgs> args =
      anvil::ParseTrainArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!args.ok()) return BadInput(args.status());
  if (args->help) {
    std::printf("%s", anvil::TrainUsage().c_str());
    return 0;
  }
  absl::StatusOr<anvil::proto::TrainConfig> resolved = anvil::ResolveTrainConfig(*args);
  if (!resolved.ok()) return BadInput(resolved.status());
  const anvil::proto::TrainConfig& config = *resolved;
  if (absl::Status s = anvil::ValidateTrainConfig(config); !s.ok()) return BadInput(s);
  if (args->print_config) {
    std::printf("%s", anvil::ConfigToText(config).c_str());
    return 0;
  }
  int save_signal = 0;
  if (!config.save_signal().empty()) {  // validated above
    save_signal = *anvil::ckpt::ParseSignalName(config.save_signal());
  }
  const absl::Duration dist_timeout = absl::Seconds(args->dist_timeout_s);

  auto env = anvil::ReadDistEnv();
  if (!env.ok()) return BadInput(env.status());
  anvil::StartProgressReporter();  // under the launcher: its hang watchdog and /metrics
  // Probing CUDA costs one cudaGetDeviceCount; --device cpu skips it.
  const anvil::CudaProbe probe =
      config.device() == "cpu" ? anvil::CudaProbe{} : anvil::ProbeCuda();
  auto choice = anvil::ChooseDevice(config.device(), env->local_rank,
                                    env->world_size > 1 ? env->local_world_size : 1, probe);
  if (!choice.ok()) return BadInput(choice.status());
  auto device = anvil::MakeDevice(*choice, config.threads());
  auto dist = anvil::Connect(*env, config, dist_timeout, *choice);
  if (!dist.ok()) {
    std::fprintf(stderr, "train: rank %d: %s\n", env->rank,
                 std::string(dist.status().message()).c_str());
    return 1;
  }
  const bool leader = env->rank == 0;
  anvil::TrainerOptions options;
  options.groups = dist->groups();
  // NCCL groups take device buffers: the trainer's host scalars go through Gloo.
  if (dist->world != nullptr && dist->host_world != dist->world.get()) {
    options.host_group = dist->host_world;
  }
  options.rank = env->rank;
  options.world_size = env->world_size;
  options.store = dist->store;
  options.store_timeout = dist_timeout;
  options.run_id = env->run_id;
  if (!leader) options.log = [](const std::string&) {};
  auto trainer = anvil::Trainer::Create(config, device.get(), options);
  if (!trainer.ok()) return BadInput(trainer.status());
  // Measured after the input checks, so bad input fails fast. MFU is against
  // the peak of the dtype the matmuls run in (bf16 compute: the bf16 GEMM);
  // on a GPU, its data-sheet peak (none known: no MFU).
  const bool bf16 = config.param_dtype() == "bf16";
  const bool gpu = choice->kind == anvil::kernels::DeviceKind::kCuda;
  (*trainer)->set_peak_flops(
      gpu ? anvil::NominalPeakFlops(*choice, bf16)
          : (bf16 ? anvil::kernels::MeasureBf16GemmPeakGflops(config.threads())
                  : anvil::kernels::MeasureSgemmPeakGflops(config.threads())) *
                1e9);
  const auto& m = config.model();
  if (leader) {
    const anvil::ModelSpec& spec = (*trainer)->model_spec();
    // A micro-batch is B sequences of T tokens, or B images.
    const std::string batch =
        spec.data == anvil::DataKind::kTokens
            ? absl::StrFormat("%d x %d", config.data().batch_size(), config.data().seq_len())
            : absl::StrFormat("%d images", config.data().batch_size());
    std::printf("model: %s, %zu parameters | %d rank(s), %s, params %s, reduce %s | batch %s x "
                "accum %d per rank | %s%s peak %.1f GFLOP/s per rank\n",
                spec.describe(m).c_str(), (*trainer)->num_params(), env->world_size,
                config.sharding().c_str(), config.param_dtype().c_str(),
                config.reduce_dtype().c_str(), batch.c_str(), config.grad_accum(),
                gpu ? (device->Describe() + ", data-sheet ").c_str() : "",
                bf16 ? "bf16 GEMM" : "sgemm", (*trainer)->peak_flops() / 1e9);
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

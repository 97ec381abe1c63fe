// Trainer: the training loop of one rank.
//
// Owns the model (built by the model registry from config.model().kind, so
// the trainer names no model), its data sources (each rank its disjoint
// slice of every global batch), the schedule and a ShardedEngine that holds the rank's shard of the
// flat state and does all communication; a single process is the same code
// with no process groups. Runs gradient accumulation, clipping, AdamW,
// periodic evaluation and the per-step log line (throughput is the whole
// job's: every rank's tokens; percent, ETA and the slowest rank from a
// metrics::StepReporter, which also writes --tensorboard_dir and
// --metrics_jsonl).
//
// Checkpoints (when config.checkpoint_dir is set; runtime/checkpoint/):
// Create locks the directory for this job, resumes from the newest
// checkpoint there that verifies (resharding to this run's world and
// strategy) if it is this run's (saved with the same settings, or by the same
// run id; another run's only with --resume_from), else from the newest in
// --resume_from's directory, else starts from --init_from weights or the
// seed. Run saves every checkpoint_every steps asynchronously, at the end,
// and when a stop signal arrives (all ranks agree on the step first), then
// returns with stopped() true. A failed save stops the run after the current
// step (all ranks agree, as for a signal) unless --on_save_error=continue;
// committed checkpoints are never touched by a failure.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kernels/device.h"
#include "models/model_spec.h"
#include "proto/config.pb.h"
#include "runtime/checkpoint/checkpoint_writer.h"
#include "runtime/data/data_source.h"
#include "runtime/metrics/step_reporter.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/optim/lr_schedule.h"

namespace anvil {

struct StepStats {
  int step = 0;  // 1-based count of completed steps
  double loss = 0;
  float lr = 0;
  double grad_norm = 0;
  bool skipped = false;
  double ms = 0;
  double busy_ms = 0;       // ms minus the time this rank waited on collectives
  double items_per_s = 0;   // whole job, in the model's unit (tokens, images)
  const char* unit = "";    // that unit
  double mfu = 0;           // fraction of world x measured peak, 0 if unknown
};

// What a trainer needs besides its config (process groups, store, logging):
// every run setting, such as config.init_from() or config.checkpoint_async(),
// is read from the config.
struct TrainerOptions {
  // Per-rank achievable FLOP/s (measured sgemm peak); <= 0 disables MFU.
  double peak_flops = 0;
  // Receives every log line (step, eval, summary). Default: stdout.
  std::function<void(const std::string&)> log;
  // Process groups from Connect(); all null for a single process.
  EngineGroups groups;
  int rank = 0;
  int world_size = 1;
  // The job's store (per attempt); checkpoint saves and resume agree
  // through it. Null for a single process.
  std::shared_ptr<Store> store = nullptr;
  absl::Duration store_timeout = absl::Minutes(5);
  // The launcher's run id (ANVIL_RUN_ID), recorded in the checkpoint
  // directory's lock and in each manifest. Empty for a lone process.
  std::string run_id = "";
  // A group over host memory (Gloo) for the trainer's own host scalars (the
  // stop agreement, the eval mean) when the engine's groups need device
  // buffers (NCCL). Null: those go through the engine's world group.
  ProcessGroup* host_group = nullptr;
};

// Engine options as the run config spells them.
absl::StatusOr<EngineOptions> EngineOptionsFromConfig(const proto::TrainConfig& config);

class Trainer {
 public:
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const proto::TrainConfig& config,
                                                         kernels::Device* device,
                                                         TrainerOptions options = {});
  ~Trainer();

  // Trains until config.steps or a stop signal. Returns the stats of each step.
  absl::StatusOr<std::vector<StepStats>> Run();
  // One optimizer step (grad_accum micro-batches).
  absl::StatusOr<StepStats> Step();
  // Mean loss over eval_batches batches of the val split (from its start),
  // averaged over ranks.
  absl::StatusOr<double> Evaluate();

  int step() const { return step_; }
  UnitModel& model() { return *model_; }
  const ModelSpec& model_spec() const { return *spec_; }
  ShardedEngine& engine() { return *engine_; }
  size_t num_params() const { return model_->layout().total_numel(); }
  absl::StatusOr<std::vector<float>> FullParams();
  // Saves a checkpoint of the current step (no-op without checkpoint_dir);
  // `wait`: until committed.
  absl::Status SaveCheckpoint(bool wait);
  // A stop signal ended Run() early (after saving).
  bool stopped() const { return stopped_; }
  // Run() failed because a checkpoint could not be saved (the final one, or
  // any with --on_save_error=stop).
  bool save_failed() const { return save_failed_; }
  // Step the run resumed from, -1 if it did not.
  int64_t resumed_step() const { return resumed_step_; }
  void set_peak_flops(double f) { options_.peak_flops = f; }
  double peak_flops() const { return options_.peak_flops; }

 private:
  Trainer(const proto::TrainConfig& config, kernels::Device* device, TrainerOptions options);
  void Log(const std::string& line) const;
  absl::Status InitState();
  absl::Status Resume(bool* resumed);
  absl::StatusOr<bool> StopAgreed();
  // --sample_every: every rank draws the same class grid through the engine;
  // rank 0 writes it to TensorBoard as "samples/grid".
  absl::Status WriteSampleGrid(int step);
  static constexpr int kGridSamplerSteps = 20;
  static constexpr double kGridGuidance = 3.0;
  static constexpr int kGridPerClass = 4;
  // The mean of a host scalar over ranks (options_.host_group when set).
  absl::StatusOr<double> HostMean(double v);
  // Logs each report and remembers the first failed save that counts in
  // save_error_ (with --on_save_error=continue, only the last of the `final`
  // reports counts).
  void LogCheckpointReports(const std::vector<ckpt::SaveReport>& reports, bool final = false);
  // The error Run() returns for save_error_ (stop_step: where it stopped).
  absl::Status SaveFailure(int stop_step);

  proto::TrainConfig config_;
  kernels::Device* device_;
  TrainerOptions options_;
  const ModelSpec* spec_ = nullptr;
  std::unique_ptr<UnitModel> model_;
  std::unique_ptr<ShardedEngine> engine_;
  LrSchedule schedule_;
  std::unique_ptr<DataSource> train_data_, val_data_;
  Batch batch_;
  int step_ = 0;
  std::unique_ptr<ckpt::CheckpointWriter> writer_;
  // Percent, ETA and straggler spread of the step line; metrics files.
  std::unique_ptr<metrics::StepReporter> reporter_;
  int64_t last_saved_step_ = -1;
  int64_t resumed_step_ = -1;
  bool stopped_ = false;
  absl::Status save_error_;  // the first failed save, with its step
  bool save_failed_ = false;
};

}  // namespace anvil

#include "runtime/trainer/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "models/diffusion_model.h"
#include "models/model_registry.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/checkpoint_loader.h"
#include "runtime/checkpoint/config_compat.h"
#include "runtime/checkpoint/hf_interchange.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/save_signal.h"
#include "runtime/checkpoint/shard_slices.h"
#include "runtime/data/png_io.h"
#include "runtime/diffusion/process_config.h"
#include "runtime/diffusion/sample_grid.h"
#include "runtime/metrics/test_slowdown.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/progress_reporter.h"
#include "runtime/trainer/stop_signal.h"
#include "runtime/trainer/test_hang.h"

namespace anvil {
namespace {

// "tokens" -> "tok", "images" -> "img" on the step line.
const char* ShortUnit(const char* unit) {
  const std::string_view u(unit);
  if (u == "tokens") return "tok";
  if (u == "images") return "img";
  return unit;
}

metrics::StepScalars ScalarsOf(const StepStats& st, std::optional<double> loss_scale,
                               std::optional<double> eval_loss) {
  metrics::StepScalars s;
  s.step = st.step;
  s.loss = st.loss;
  s.lr = st.lr;
  s.grad_norm = st.grad_norm;
  s.items_per_s = st.items_per_s;
  s.unit = st.unit;
  s.mfu = st.mfu;
  s.step_ms = st.ms;
  s.loss_scale = loss_scale;
  s.eval_loss = eval_loss;
  return s;
}

}  // namespace

absl::StatusOr<EngineOptions> EngineOptionsFromConfig(const proto::TrainConfig& config) {
  EngineOptions e;
  ASSIGN_OR_RETURN(e.strategy, ParseShardingStrategy(config.sharding()));
  ASSIGN_OR_RETURN(e.param_dtype, ParseFloatDType(config.param_dtype()));
  ASSIGN_OR_RETURN(e.reduce_dtype, ParseFloatDType(config.reduce_dtype()));
  const auto& o = config.optim();
  e.adamw = AdamWConfig{o.beta1(), o.beta2(), o.eps(), o.weight_decay()};
  e.grad_clip = o.grad_clip();
  e.ema_decay = o.ema_decay();
  if (config.has_bucket_mb()) e.bucket_bytes = static_cast<size_t>(config.bucket_mb()) << 20;
  return e;
}

Trainer::Trainer(const proto::TrainConfig& config, kernels::Device* device,
                 TrainerOptions options)
    : config_(config), device_(device), options_(std::move(options)) {}

Trainer::~Trainer() = default;

void Trainer::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const proto::TrainConfig& config,
                                                         kernels::Device* device,
                                                         TrainerOptions options) {
  RETURN_IF_ERROR(ValidateTrainConfig(config));
  std::unique_ptr<Trainer> t(new Trainer(config, device, std::move(options)));
  ASSIGN_OR_RETURN(t->spec_, FindModel(config.model().kind()));
  ASSIGN_OR_RETURN(t->model_, CreateModel(config, device));
  if (config.diffusion().sample_every() > 0 &&
      dynamic_cast<DiffusionModel*>(t->model_.get()) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--sample_every draws images: model '", config.model().kind(), "' is no diffusion model"));
  }
  DataSourceOptions so;
  so.rank = t->options_.rank;
  so.world_size = t->options_.world_size;
  ASSIGN_OR_RETURN(t->train_data_, OpenDataSource(t->spec_->data, config, so));
  if (HasValidationData(t->spec_->data, config)) {
    so.split = Split::kVal;
    ASSIGN_OR_RETURN(t->val_data_, OpenDataSource(t->spec_->data, config, so));
  }

  ASSIGN_OR_RETURN(EngineOptions eo, EngineOptionsFromConfig(config));
  ASSIGN_OR_RETURN(t->engine_,
                   ShardedEngine::Create(t->model_.get(), device, t->options_.groups, eo));
  metrics::ReporterOptions ro;
  ro.rank = t->options_.rank;
  ro.world_size = t->options_.world_size;
  ro.world = t->options_.groups.world;
  ro.total_steps = config.steps();
  ro.tensorboard_dir = config.tensorboard_dir();
  ro.metrics_jsonl = config.metrics_jsonl();
  ro.straggler_factor = config.straggler_factor();
  ro.straggler_window = config.straggler_window();
  ro.straggler_every = config.straggler_every();
  ro.log = [self = t.get()](const std::string& line) { self->Log(line); };
  ASSIGN_OR_RETURN(t->reporter_, metrics::StepReporter::Create(std::move(ro)));
  RETURN_IF_ERROR(t->InitState());
  const auto& o = config.optim();
  t->schedule_ = LrSchedule{o.lr(), o.warmup_steps(), config.steps(), o.min_lr_ratio()};
  return t;
}

absl::Status Trainer::InitState() {
  bool resumed = false;
  if (!config_.checkpoint_dir().empty()) {
    ckpt::CheckpointWriterOptions wo;
    wo.dir = config_.checkpoint_dir();
    wo.run_id = options_.run_id;
    wo.rank = options_.rank;
    wo.world_size = options_.world_size;
    wo.store = options_.store;
    wo.timeout = options_.store_timeout;
    wo.keep_last = config_.keep_last();
    wo.async = config_.checkpoint_async();
    ASSIGN_OR_RETURN(writer_, ckpt::CheckpointWriter::Create(wo));
    if (!writer_->lock_note().empty()) Log("checkpoint: " + writer_->lock_note());
    RETURN_IF_ERROR(Resume(&resumed));
    const ckpt::Piece piece = ckpt::WriterPiece(engine_->shard_layout().local_numel(),
                                                engine_->replicas(), engine_->replica_rank());
    writer_->Reserve(engine_->state().size() * piece.size());
  }
  if (resumed) return absl::OkStatus();
  RETURN_IF_ERROR(engine_->InitParams(config_.seed()));
  if (!config_.init_from().empty()) {
    if (!spec_->hf.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--init_from: model '", spec_->kind, "' has no Hugging Face naming to import with"));
    }
    absl::StatusOr<ckpt::ImportReport> imp =
        ckpt::ImportHf(config_.init_from(), model_->layout(), *spec_->hf);
    if (!imp.ok()) {
      return absl::Status(imp.status().code(),
                          absl::StrCat("--init_from: ", imp.status().message()));
    }
    RETURN_IF_ERROR(engine_->SetFullParams(imp->params.data()));
    Log(absl::StrFormat("initialised weights from %s%s", imp->file,
                        imp->ignored.empty()
                            ? ""
                            : absl::StrCat(" (ignored: ", absl::StrJoin(imp->ignored, ", "), ")")));
  }
  return absl::OkStatus();
}

absl::Status Trainer::Resume(bool* resumed) {
  const auto t0 = std::chrono::steady_clock::now();
  ckpt::ResumeOptions ro;
  ro.dir = config_.checkpoint_dir();
  ro.rank = options_.rank;
  ro.world_size = options_.world_size;
  ro.store = options_.store;
  ro.timeout = options_.store_timeout;
  ASSIGN_OR_RETURN(ckpt::ResumeSearch search, ckpt::FindResumePoint(ro));
  for (const std::string& line : search.skipped) Log("checkpoint: skipped " + line);
  // --resume_from names another run's directory: read only, used when this
  // run has no checkpoint of its own yet.
  const std::string& from = config_.resume_from();
  const bool foreign = !search.point.has_value() && !from.empty() && from != ro.dir;
  if (foreign) {
    ro.dir = from;
    ro.key_prefix = "resume_from/";
    ASSIGN_OR_RETURN(search, ckpt::FindResumePoint(ro));
    for (const std::string& line : search.skipped) Log("checkpoint: skipped " + line);
    if (!search.point.has_value()) {
      return absl::NotFoundError(absl::StrCat("--resume_from ", from, ": no checkpoint there"));
    }
  }
  if (!search.point.has_value()) return absl::OkStatus();
  const ckpt::ResumePoint& point = *search.point;
  const proto::CheckpointManifest& m = point.manifest;
  const std::string name = ckpt::StepDirName(m.step());
  std::vector<std::string> changed;
  RETURN_IF_ERROR(ckpt::CheckResumeConfig(m.config(), config_, name, &changed));
  // A checkpoint saved with other settings by another run id is another
  // job's: continuing it is an explicit choice, never a side effect of
  // sharing a directory.
  const bool same_run = !m.run_id().empty() && m.run_id() == options_.run_id;
  if (!changed.empty() && !same_run && !foreign && from != ro.dir) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--checkpoint_dir ", ro.dir, " holds ", name, " of another run (saved with ",
        absl::StrJoin(changed, ", "), "); pass --resume_from ", ro.dir,
        " to continue from it anyway, or use another --checkpoint_dir"));
  }
  ckpt::ShardTarget target{&model_->layout(), &engine_->shard_layout(), device_,
                           engine_->state()};
  // A checkpoint saved without an EMA (--ema_decay 0, or older): the EMA
  // starts from the loaded weights.
  bool ema_from_params = false;
  if (engine_->has_ema()) {
    ema_from_params = std::none_of(m.tensors().begin(), m.tensors().end(),
                                   [](const auto& t) { return ckpt::EntryStateName(t) == "ema"; });
    if (ema_from_params) {
      std::erase_if(target.state, [](const StateBuffer& b) { return b.name == "ema"; });
    }
  }
  absl::StatusOr<ckpt::LoadStats> loaded = ckpt::LoadShard(point, target);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("loading ", point.path, ": ", loaded.status().message()));
  }
  if (ema_from_params) {
    engine_->ResetEma();
    Log(absl::StrCat(name, " holds no EMA of the weights: the EMA starts from its weights"));
  }
  engine_->OnStateLoaded();
  const proto::TrainingState& st = m.state();
  engine_->set_step(st.optimizer_step());
  engine_->scaler().Restore(st.loss_scale(), st.loss_scale_clean_steps());
  // A changed --seed is reported above and takes effect.
  RETURN_IF_ERROR(train_data_->RestoreState(st));
  step_ = static_cast<int>(st.step());
  resumed_step_ = st.step();
  last_saved_step_ = st.step();
  *resumed = true;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Log(absl::StrFormat(
      "resumed from %s%s (saved by %d rank(s) %s, loaded by %d rank(s) %s): %.1f MB read by this "
      "rank in %d reads, %.0f ms including verification",
      point.path, foreign ? " (--resume_from, read only)" : "", m.world_size(), m.sharding(),
      options_.world_size, config_.sharding(), loaded->bytes_read / 1e6, loaded->reads, ms));
  if (const std::string layout =
          ckpt::DescribeResumeLayout(m.config(), m.world_size(), config_, options_.world_size);
      !layout.empty()) {
    Log(layout);
  }
  if (!changed.empty()) {
    Log("resuming with changed settings (the run will differ from an uninterrupted one): " +
        absl::StrJoin(changed, ", "));
  }
  if (options_.rank == 0 && !foreign) {
    for (const std::string& line : ckpt::CleanUpAfterResume(config_.checkpoint_dir(), search)) {
      Log("checkpoint: " + line);
    }
  }
  return absl::OkStatus();
}

void Trainer::LogCheckpointReports(const std::vector<ckpt::SaveReport>& reports, bool final) {
  const bool stop_on_error = config_.on_save_error() != "continue";
  for (size_t i = 0; i < reports.size(); ++i) {
    const ckpt::SaveReport& r = reports[i];
    Log(r.Describe());
    // --on_save_error=continue: only the last save (the finished state) counts.
    const bool counts = stop_on_error || (final && i + 1 == reports.size());
    if (!r.status.ok() && counts && save_error_.ok()) {
      save_error_ = absl::Status(r.status.code(), absl::StrCat("checkpoint ", ckpt::StepDirName(r.step),
                                                               " could not be saved: ",
                                                               r.status.message()));
    }
  }
}

absl::Status Trainer::SaveFailure(int stop_step) {
  save_failed_ = true;
  const std::vector<ckpt::DirEntry> committed =
      ckpt::CommittedCheckpoints(config_.checkpoint_dir());
  return absl::Status(
      save_error_.code(),
      absl::StrCat(save_error_.message(), "; stopped after step ", stop_step,
                   config_.on_save_error() == "continue" ? "" : " (--on_save_error=stop)",
                   "; the newest committed checkpoint is ",
                   committed.empty() ? "none" : committed.front().name));
}

absl::Status Trainer::SaveCheckpoint(bool wait) {
  if (writer_ == nullptr) return absl::OkStatus();
  LogCheckpointReports(writer_->TakeFinished());
  if (last_saved_step_ != step_) {
    ckpt::SaveRequest r;
    r.step = step_;
    r.config = config_;
    proto::TrainingState& st = r.state;
    st.set_step(step_);
    st.set_optimizer_step(engine_->step());
    st.set_loss_scale(engine_->scaler().scale());
    st.set_loss_scale_clean_steps(engine_->scaler().clean_steps());
    train_data_->SaveState(&st);
    ckpt::ShardSource& src = r.source;
    src.layout = &model_->layout();
    src.shards = &engine_->shard_layout();
    src.replicas = engine_->replicas();
    src.replica_rank = engine_->replica_rank();
    src.device = device_;
    src.state = engine_->state();
    ASSIGN_OR_RETURN(const ckpt::SaveTiming t, writer_->Save(std::move(r)));
    last_saved_step_ = step_;
    ReportCheckpoint(step_);
    Log(absl::StrFormat(
        "checkpoint %s: training stalled %.1f ms (snapshot of %.1f MB %.1f ms, waiting for the "
        "previous save %.1f ms)%s",
        ckpt::StepDirName(step_), t.stall_s * 1e3, t.bytes / 1e6, t.snapshot_s * 1e3,
        t.wait_s * 1e3, wait || !config_.checkpoint_async() ? "" : "; writing in the background"));
  }
  if (!wait) return absl::OkStatus();
  LogCheckpointReports(writer_->Wait(), /*final=*/true);
  return save_error_.ok() ? absl::OkStatus() : SaveFailure(step_);
}

absl::StatusOr<bool> Trainer::StopAgreed() {
  const bool local = StopRequested() || ckpt::SaveSignalReceived() != 0 || !save_error_.ok();
  if (options_.world_size <= 1) return local;
  // Signals reach ranks at different moments; all must stop at the same step.
  ASSIGN_OR_RETURN(const double any, HostMean(local ? 1.0 : 0.0));
  return any > 0;
}

absl::StatusOr<std::vector<float>> Trainer::FullParams() {
  std::vector<float> p(num_params());
  RETURN_IF_ERROR(engine_->GetFullParams(p.data()));
  return p;
}

absl::StatusOr<StepStats> Trainer::Step() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const double waited_before = engine_->comm().exposed_wait_s;
  metrics::TestOnlySlowdown(options_.rank);
  const int accum = config_.grad_accum();
  for (int micro = 0; micro < accum; ++micro) {
    RETURN_IF_ERROR(train_data_->Next(&batch_));
    RETURN_IF_ERROR(model_->SetBatch(batch_));
    // The loss stays on the device: Step reads the step's scalars once.
    RETURN_IF_ERROR(engine_->RunMicroBatch(1.0f / static_cast<float>(accum), micro == accum - 1));
  }
  const float lr = schedule_.At(step_);
  ASSIGN_OR_RETURN(const StepResult res, engine_->Step(lr));
  device_->Synchronize();
  ++step_;

  StepStats st;
  st.step = step_;
  st.loss = res.loss;
  st.lr = lr;
  st.grad_norm = res.grad_norm;
  st.skipped = res.skipped;
  st.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  st.busy_ms = st.ms - (engine_->comm().exposed_wait_s - waited_before) * 1e3;
  const SampleWork work = model_->work_per_sample();
  const double samples_per_s = static_cast<double>(batch_.samples()) * accum *
                               options_.world_size / (st.ms / 1e3);
  st.unit = work.unit;
  st.items_per_s = samples_per_s * work.items;
  if (options_.peak_flops > 0) {
    st.mfu = work.train_flops * samples_per_s / (options_.peak_flops * options_.world_size);
  }
  return st;
}

absl::StatusOr<double> Trainer::Evaluate() {
  if (val_data_ == nullptr) return absl::FailedPreconditionError("no --val_pattern");
  val_data_->Reset();
  const int batches = static_cast<int>(std::min<uint64_t>(
      static_cast<uint64_t>(config_.eval_batches()), val_data_->batches_per_epoch()));
  double sum = 0;
  for (int i = 0; i < batches; ++i) {
    RETURN_IF_ERROR(val_data_->Next(&batch_));
    RETURN_IF_ERROR(model_->SetBatch(batch_));
    ASSIGN_OR_RETURN(const double l, engine_->ForwardLoss());
    sum += l;
  }
  return HostMean(sum / batches);
}

absl::Status Trainer::WriteSampleGrid(int step) {
  auto* model = dynamic_cast<DiffusionModel*>(model_.get());
  if (model == nullptr) return absl::OkStatus();  // refused at Create
  ASSIGN_OR_RETURN(const diffusion::ProcessSettings process,
                   diffusion::ProcessFromConfig(config_.diffusion()));
  ASSIGN_OR_RETURN(const diffusion::NoiseSchedule schedule,
                   diffusion::NoiseSchedule::Create(process.schedule));
  const int classes = model->num_classes();
  diffusion::SamplingOptions so;
  so.kind = diffusion::SamplerKind::kDdim;
  so.steps = std::min(kGridSamplerSteps, schedule.timesteps());
  so.guidance = classes > 0 ? kGridGuidance : 1.0;
  so.prediction = process.prediction;
  so.seed = config_.seed();
  so.null_class = classes;
  const int H = model->image_height(), W = model->image_width(), C = model->image_channels();
  if (C != 1 && C != 3) return absl::OkStatus();  // PNG takes gray or RGB
  // Every rank runs the same forwards (the engine gathers parameters
  // collectively); the batch is the model's own micro-batch at most.
  const diffusion::BatchModelFn fn = [&](int b, const float* x_t, const int32_t* t,
                                         const int32_t* labels, float* out) -> absl::Status {
    Batch batch;
    batch.Set("x_t", {DType::kF32, {b, H, W, C}, const_cast<float*>(x_t)});
    batch.Set("timesteps", {DType::kI32, {b}, const_cast<int32_t*>(t)});
    batch.Set("labels", {DType::kI32, {b}, const_cast<int32_t*>(labels)});
    RETURN_IF_ERROR(model->SetBatch(batch));
    RETURN_IF_ERROR(engine_->ForwardLoss().status());
    model->CopyPrediction(out);
    return absl::OkStatus();
  };
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const diffusion::GridImage grid,
                   diffusion::DrawClassGrid(schedule, fn, H, W, C, classes, kGridPerClass,
                                            config_.data().batch_size(), so));
  if (options_.rank != 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string png,
                   EncodePng(grid.height, grid.width, grid.channels, grid.pixels.data()));
  RETURN_IF_ERROR(reporter_->WriteImage(step, "samples/grid", png, grid.height, grid.width,
                                        grid.channels));
  Log(absl::StrFormat("samples %4d | %dx%d grid (DDIM %d steps, guidance %.0f) in %.1f s", step,
                      classes > 0 ? classes : kGridPerClass, kGridPerClass, so.steps, so.guidance,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                          .count()));
  return absl::OkStatus();
}

absl::StatusOr<double> Trainer::HostMean(double v) {
  ProcessGroup* g = options_.host_group;
  if (g == nullptr || g->size() == 1) return engine_->MeanOverRanks(v);
  float f = static_cast<float>(v);
  RETURN_IF_ERROR(g->AllReduce(&f, 1, {.op = ReduceOp::kAvg})->Wait(options_.store_timeout));
  return static_cast<double>(f);
}

absl::StatusOr<std::vector<StepStats>> Trainer::Run() {
  std::vector<StepStats> all;
  const int steps = config_.steps();
  const int log_every = config_.log_every();
  const int eval_every = config_.eval_every();
  double last_val = -1;
  const auto t0 = std::chrono::steady_clock::now();
  const int first_step = step_;
  const int ckpt_every = config_.checkpoint_every();
  while (step_ < steps) {
    ASSIGN_OR_RETURN(const bool stop, StopAgreed());
    if (stop && writer_ != nullptr && config_.on_save_error() != "continue") {
      // Another rank may have stopped for a failed save this rank has not
      // heard of yet: its own report of that (collective) save settles it.
      LogCheckpointReports(writer_->Wait());
      if (!save_error_.ok()) return SaveFailure(step_);
    }
    if (stop) {
      const int sig = StopSignal() != 0 ? StopSignal() : ckpt::SaveSignalReceived();
      // Ranks agree on the step; most learn of the stop from a peer.
      Log(sig != 0 ? absl::StrFormat("stopping at step %d: %s received", step_, strsignal(sig))
                   : absl::StrFormat("stopping at step %d: another rank received a stop signal",
                                     step_));
      stopped_ = true;
      break;
    }
    ASSIGN_OR_RETURN(const StepStats st, Step());
    ReportStep(st.step, st.items_per_s, st.unit);
    MaybeHangForTest(options_.rank, st.step);
    all.push_back(st);
    RETURN_IF_ERROR(reporter_->EndStep(st.step, st.ms, st.busy_ms));
    if (!std::isfinite(st.loss)) {
      return absl::InternalError(absl::StrFormat("loss is %f at step %d", st.loss, st.step));
    }
    if (st.step % log_every == 0 || st.step == 1 || st.step == steps) {
      Log(absl::StrFormat(
          "step %5d/%d%s | loss %.4f | lr %.2e | norm %.4f | %7.1f ms | %8.0f %s/s | MFU "
          "%4.1f%%%s%s",
          st.step, steps, reporter_->PercentText(), st.loss, st.lr, st.grad_norm, st.ms,
          st.items_per_s, ShortUnit(st.unit), 100 * st.mfu, reporter_->LineSuffix(),
          st.skipped ? " | skipped (inf/nan), loss scale halved" : ""));
    }
    std::optional<double> eval_loss;
    if (eval_every > 0 && (st.step % eval_every == 0 || st.step == steps)) {
      ASSIGN_OR_RETURN(last_val, Evaluate());
      eval_loss = last_val;
      Log(std::string_view(st.unit) == "tokens"
              ? absl::StrFormat("eval  %5d | val loss %.4f nats/token (%.3f bits)", st.step,
                                last_val, last_val / std::log(2.0))
              : absl::StrFormat("eval  %5d | val loss %.4f", st.step, last_val));
    }
    const int sample_every = config_.diffusion().sample_every();
    if (sample_every > 0 && (st.step % sample_every == 0 || st.step == steps)) {
      RETURN_IF_ERROR(WriteSampleGrid(st.step));
    }
    const bool fp16 = config_.param_dtype() == "fp16" || config_.reduce_dtype() == "fp16";
    RETURN_IF_ERROR(reporter_->Record(ScalarsOf(
        st, fp16 ? std::optional<double>(engine_->loss_scale()) : std::nullopt, eval_loss)));
    if (writer_ != nullptr) LogCheckpointReports(writer_->TakeFinished());
    if (writer_ != nullptr && ckpt_every > 0 && step_ % ckpt_every == 0 && step_ < steps) {
      RETURN_IF_ERROR(SaveCheckpoint(/*wait=*/false));
    }
  }
  RETURN_IF_ERROR(reporter_->Flush());
  // The last state is always saved: at the end, and on a stop signal (the
  // preemption path: finish the step, save, exit).
  RETURN_IF_ERROR(SaveCheckpoint(/*wait=*/true));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (last_val >= 0) {
    Log(absl::StrFormat("done: %d steps in %.1f s, final val loss %.4f",
                        step_ - first_step, secs, last_val));
  } else {
    Log(absl::StrFormat("done: %d steps in %.1f s", step_ - first_step, secs));
  }
  return all;
}

}  // namespace anvil

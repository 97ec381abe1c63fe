#include "runtime/diffusion/sample_tool.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "kernels/cpu/convert.h"
#include "kernels/device.h"
#include "models/batch.h"
#include "models/diffusion_model.h"
#include "models/model_registry.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/data/image_data_config.h"
#include "runtime/data/png_io.h"
#include "runtime/diffusion/process_config.h"
#include "runtime/diffusion/sample_grid.h"
#include "runtime/diffusion/sampling.h"
#include "runtime/diffusion/schedule.h"
#include "runtime/eval/classifier_features.h"

namespace anvil::diffusion {
namespace {

absl::Status CheckOptions(const SampleToolOptions& o) {
  if (o.checkpoint_dir.empty() == o.checkpoint.empty()) {
    return absl::InvalidArgumentError("pass one of --checkpoint_dir and --checkpoint");
  }
  if (o.out.empty()) return absl::InvalidArgumentError("--out is empty");
  if (o.sampler != "ddpm" && o.sampler != "ddim") {
    return absl::InvalidArgumentError(
        absl::StrCat("--sampler must be ddpm or ddim, got '", o.sampler, "'"));
  }
  if (o.steps < 1) return absl::InvalidArgumentError("--steps must be >= 1");
  if (!(o.eta >= 0 && o.eta <= 1)) return absl::InvalidArgumentError("--eta must be in [0, 1]");
  if (!std::isfinite(o.guidance)) return absl::InvalidArgumentError("--guidance must be finite");
  if (o.per_class < 1 || o.per_class > 256) {
    return absl::InvalidArgumentError("--per_class must be in [1, 256]");
  }
  if (o.dtype != "fp32" && o.dtype != "bf16") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype must be fp32 or bf16, got '", o.dtype, "'"));
  }
  if (o.eval && o.classifier_dir.empty()) {
    return absl::InvalidArgumentError(
        "--eval needs --classifier_dir (a checkpoint directory of train --model classifier)");
  }
  if (!o.eval && !o.classifier_dir.empty()) {
    return absl::InvalidArgumentError("--classifier_dir is only read with --eval");
  }
  if (o.eval && (o.eval_samples < 2 || o.eval_samples > 100000)) {
    return absl::InvalidArgumentError("--eval_samples must be in [2, 100000]");
  }
  if (o.batch < 1 || o.batch > 1024) {
    return absl::InvalidArgumentError("--batch must be in [1, 1024]");
  }
  return absl::OkStatus();
}

// The step directory to read and its manifest (files verified).
absl::Status PickCheckpoint(const SampleToolOptions& o, std::string* path,
                            proto::CheckpointManifest* m) {
  auto try_one = [&](const std::string& p) -> absl::Status {
    ASSIGN_OR_RETURN(*m, ckpt::ReadManifest(p));
    RETURN_IF_ERROR(ckpt::VerifyFiles(p, *m));
    *path = p;
    return absl::OkStatus();
  };
  if (!o.checkpoint.empty()) {
    absl::Status s = try_one(o.checkpoint);
    if (s.ok()) return s;
    return absl::Status(s.code(), absl::StrCat("--checkpoint ", o.checkpoint, ": ", s.message()));
  }
  std::string skipped;
  for (const ckpt::DirEntry& e : ckpt::CommittedCheckpoints(o.checkpoint_dir)) {
    absl::Status s = try_one(ckpt::JoinPath(o.checkpoint_dir, e.name));
    if (s.ok()) return s;
    absl::StrAppend(&skipped, "; ", e.name, ": ", s.message());
  }
  return absl::NotFoundError(
      absl::StrCat("no committed checkpoint that verifies in ", o.checkpoint_dir, skipped));
}

// Reads state `state` of every layout tensor into host (model layout).
absl::Status ReadWeights(const std::string& path, const proto::CheckpointManifest& m,
                         const ParamLayout& layout, const std::string& state, float* host) {
  for (const ParamInfo& p : layout.params()) {
    const proto::TensorEntry* entry = nullptr;
    for (const proto::TensorEntry& t : m.tensors()) {
      if (t.name() == p.name && ckpt::EntryStateName(t) == state) entry = &t;
    }
    if (entry == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " has no ", state, " tensor ", p.name,
                       " (the model's config and its weights disagree)"));
    }
    uint64_t n = 1;
    for (int64_t d : entry->shape()) n *= static_cast<uint64_t>(d);
    if (n != p.numel) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": tensor ", p.name, " holds ", n, " values, the model's ", p.numel));
    }
    RETURN_IF_ERROR(ckpt::ReadTensorRange(path, m, *entry, 0, n, host + p.offset));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SampleToolResult::Describe(const SampleToolOptions& o) const {
  return absl::StrFormat(
      "wrote %s: %d x %d samples (%s) of %s step %d (%s weights, %s), %s%s, eta %g, guidance %g, "
      "seed %d",
      o.out, rows, cols,
      num_classes > 0 ? absl::StrCat("one row per class, ", num_classes, " classes")
                      : std::string("unconditional"),
      checkpoint, step, weights, o.dtype, o.sampler,
      o.sampler == "ddim" ? absl::StrCat(" ", o.steps, " steps") : std::string(" all steps"), o.eta,
      o.guidance, o.seed);
}

std::string SampleToolResult::DescribeQuality(const SampleToolOptions& o) const {
  if (!quality.has_value()) return "";
  const eval::QualityReport& q = *quality;
  std::string s = absl::StrFormat(
      "eval: %d samples (%s) against the real test split, classifier %s step %d, %.0f s\n", q.n,
      num_classes > 0 ? absl::StrCat(o.eval_samples, " per class") : std::string("unconditional"),
      classifier, classifier_step, eval_seconds);
  absl::StrAppend(&s, absl::StrFormat("  Frechet distance %.4g (floor %.4g: two disjoint real sets "
                                      "of %d test images; lower is better)",
                                      q.fd, q.fd_floor, q.n));
  const double chance = q.classes > 0 ? 100.0 / q.classes : 0.0;
  if (q.accuracy >= 0) {
    absl::StrAppend(&s, absl::StrFormat("\n  conditional accuracy %.1f%% (chance %.1f%%, the "
                                        "classifier on real test images %.1f%%)",
                                        100 * q.accuracy, chance, 100 * q.real_accuracy));
  } else {
    absl::StrAppend(&s, absl::StrFormat("\n  no conditional accuracy (unconditional samples; the "
                                        "classifier on real test images %.1f%%)",
                                        100 * q.real_accuracy));
  }
  return s;
}

absl::StatusOr<SampleToolResult> RunSampleTool(const SampleToolOptions& o) {
  RETURN_IF_ERROR(CheckOptions(o));
  SampleToolResult r;
  proto::CheckpointManifest m;
  RETURN_IF_ERROR(PickCheckpoint(o, &r.checkpoint, &m));
  r.step = m.step();
  proto::TrainConfig config = m.config();
  // Checkpoints from before the model registry name no kind: they are GPTs.
  if (config.model().kind().empty()) config.mutable_model()->set_kind("gpt");
  ASSIGN_OR_RETURN(const ModelSpec* spec, FindModel(config.model().kind()));
  if (spec->data != DataKind::kDiffusion) {
    return absl::InvalidArgumentError(absl::StrCat(r.checkpoint, " holds a '", spec->kind,
                                                   "' model, which is no diffusion model"));
  }
  // The diffusion process the model was trained with (the data source's
  // fallbacks for unset fields; -1 classes: the data set's).
  const proto::DiffusionConfig& dc = config.diffusion();
  ASSIGN_OR_RETURN(const ProcessSettings process, ProcessFromConfig(dc));
  ASSIGN_OR_RETURN(const NoiseSchedule schedule, NoiseSchedule::Create(process.schedule));
  SamplingOptions so;
  so.prediction = process.prediction;
  r.num_classes = dc.num_classes();
  if (r.num_classes < 0) {
    ASSIGN_OR_RETURN(const ImageDataset data, LoadImageData(config.data(), Split::kTrain));
    r.num_classes = data.num_classes;
  }
  if (o.sampler == "ddim" && o.steps > schedule.timesteps()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--steps must be <= the model's T = ", schedule.timesteps()));
  }
  so.kind = o.sampler == "ddpm" ? SamplerKind::kDdpm : SamplerKind::kDdim;
  so.steps = o.steps;
  so.eta = o.eta;
  so.guidance = o.guidance;
  so.seed = o.seed;
  so.null_class = r.num_classes;

  // The model, in fp32, one grid row per batch.
  r.cols = o.per_class;
  r.rows = r.num_classes > 0 ? r.num_classes : o.per_class;
  const int64_t grid_n = int64_t{r.rows} * r.cols;
  const int64_t eval_n =
      !o.eval ? 0 : (r.num_classes > 0 ? int64_t{o.eval_samples} * r.num_classes : o.eval_samples);
  const int max_batch = static_cast<int>(std::min<int64_t>(o.batch, std::max(grid_n, eval_n)));
  config.mutable_data()->set_batch_size(max_batch);
  config.set_param_dtype(o.dtype);
  config.set_recompute("none");
  std::unique_ptr<kernels::Device> device = kernels::MakeCpuDevice(o.threads);
  // The classifier and the real test images first: bad eval input fails
  // before any sampling.
  std::unique_ptr<eval::ClassifierEvaluator> classifier;
  ImageDataset real;
  if (o.eval) {
    auto loaded = eval::ClassifierEvaluator::Load(o.classifier_dir, device.get());
    if (!loaded.ok()) {
      return absl::Status(loaded.status().code(),
                          absl::StrCat("--classifier_dir: ", loaded.status().message()));
    }
    classifier = *std::move(loaded);
    if (r.num_classes > 0 && classifier->num_classes() != r.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--classifier_dir ", classifier->checkpoint_path(), " tells ", classifier->num_classes(),
          " classes apart, the diffusion model draws ", r.num_classes));
    }
    ASSIGN_OR_RETURN(real, LoadImageData(config.data(), Split::kVal));
    r.classifier = classifier->checkpoint_path();
    r.classifier_step = classifier->step();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<UnitModel> unit_model, CreateModel(config, device.get()));
  auto* model = dynamic_cast<DiffusionModel*>(unit_model.get());
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", spec->kind, "' declares diffusion data but is no DiffusionModel"));
  }
  const ParamLayout& layout = model->layout();
  bool has_ema = false;
  for (const proto::TensorEntry& t : m.tensors()) has_ema |= ckpt::EntryStateName(t) == "ema";
  r.weights = o.use_ema && has_ema ? "ema" : "params";
  std::vector<float> host(layout.total_numel());
  RETURN_IF_ERROR(ReadWeights(r.checkpoint, m, layout, r.weights, host.data()));
  // bf16 compute takes bf16 weights (rounded to nearest even, as the
  // sharded engine's gathered copies are).
  std::vector<uint16_t> host_bf16;
  const void* weights = host.data();
  if (model->compute_dtype() == DType::kBF16) {
    host_bf16.resize(host.size());
    for (size_t i = 0; i < host.size(); ++i) host_bf16[i] = kernels::F32ToBF16(host[i]);
    weights = host_bf16.data();
  }
  const size_t weight_bytes = host.size() * DTypeSize(model->compute_dtype());
  void* params = device->Alloc(weight_bytes);
  device->CopyFromHost(params, weights, weight_bytes);
  std::unique_ptr<void, std::function<void(void*)>> free_params(
      params, [&device](void* p) { device->Free(p); });

  const int H = model->image_height(), W = model->image_width(), C = model->image_channels();
  if (C != 1 && C != 3) {
    return absl::InvalidArgumentError(absl::StrCat("images of ", C, " channels: PNG needs 1 or 3"));
  }
  const BatchModelFn fn = [&](int B, const float* x_t, const int32_t* t, const int32_t* labels,
                              float* out) -> absl::Status {
    Batch b;
    b.Set("x_t", {DType::kF32, {B, H, W, C}, const_cast<float*>(x_t)});
    b.Set("timesteps", {DType::kI32, {B}, const_cast<int32_t*>(t)});
    b.Set("labels", {DType::kI32, {B}, const_cast<int32_t*>(labels)});
    RETURN_IF_ERROR(model->SetBatch(b));
    model->ForwardAll(params);
    model->CopyPrediction(out);
    return absl::OkStatus();
  };
  const int64_t numel = int64_t{H} * W * C;
  // The grid: sample index row * cols + column, label = row.
  ASSIGN_OR_RETURN(const GridImage grid,
                   DrawClassGrid(schedule, fn, H, W, C, r.num_classes, r.cols, max_batch, so));
  RETURN_IF_ERROR(WritePng(o.out, grid.height, grid.width, C, grid.pixels.data()));
  if (!o.eval) return r;

  // The eval set: labels cycle through the classes (so the first N that
  // EvaluateSamples may keep are balanced), noise indices after the grid's.
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = eval_n;
  std::vector<float> samples(static_cast<size_t>(n * numel));
  std::vector<int32_t> sample_labels(n, 0);
  if (r.num_classes > 0) {
    for (int64_t i = 0; i < n; ++i) sample_labels[i] = static_cast<int32_t>(i % r.num_classes);
  }
  so.first_sample = static_cast<uint64_t>(grid_n);
  RETURN_IF_ERROR(SampleBatched(schedule, fn, H, W, C, n, max_batch,
                                r.num_classes > 0 ? sample_labels.data() : nullptr, so,
                                samples.data()));
  ASSIGN_OR_RETURN(
      r.quality,
      eval::EvaluateSamples(*classifier, samples.data(),
                            r.num_classes > 0 ? sample_labels.data() : nullptr, n, H, W, C, real));
  r.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace anvil::diffusion

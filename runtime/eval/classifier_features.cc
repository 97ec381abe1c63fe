#include "runtime/eval/classifier_features.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/model_registry.h"
#include "runtime/checkpoint/checkpoint_loader.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/sharding/shard_layout.h"

namespace anvil::eval {

ClassifierEvaluator::~ClassifierEvaluator() {
  if (params_ != nullptr) device_->Free(params_);
}

absl::StatusOr<std::unique_ptr<ClassifierEvaluator>> ClassifierEvaluator::Load(
    const std::string& checkpoint, kernels::Device* device, ClassifierEvalOptions options) {
  if (options.batch <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation batch must be > 0, got ", options.batch));
  }
  // A step directory (holds a manifest) or a run's checkpoint directory.
  ckpt::ResumePoint point;
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(checkpoint) / ckpt::kManifestName, ec)) {
    ASSIGN_OR_RETURN(point.manifest, ckpt::ReadManifest(checkpoint));
    RETURN_IF_ERROR(ckpt::VerifyFiles(checkpoint, point.manifest));
    point.path = checkpoint;
  } else {
    ckpt::ResumeOptions ro;
    ro.dir = checkpoint;
    ASSIGN_OR_RETURN(ckpt::ResumeSearch search, ckpt::FindResumePoint(ro));
    if (!search.point.has_value()) {
      return absl::NotFoundError(
          absl::StrCat(checkpoint,
                       ": no committed checkpoint that verifies (train a classifier "
                       "with --model classifier --checkpoint_dir)"));
    }
    point = *search.point;
  }
  const proto::TrainConfig& config = point.manifest.config();
  const std::string kind = config.model().kind().empty() ? "gpt" : config.model().kind();
  ASSIGN_OR_RETURN(const ModelSpec* spec, FindModel(kind));
  ModelBuildOptions bo;
  bo.max_batch = options.batch;
  bo.compute_dtype = DType::kF32;
  ASSIGN_OR_RETURN(std::unique_ptr<UnitModel> model, spec->create(config.model(), bo, device));
  auto* classifier = dynamic_cast<ClassifierModel*>(model.get());
  if (classifier == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(point.path, " holds a --model ", kind, " checkpoint, not a classifier's"));
  }
  std::unique_ptr<ClassifierEvaluator> e(new ClassifierEvaluator());
  e->device_ = device;
  e->options_ = options;
  e->path_ = point.path;
  e->step_ = point.manifest.step();
  e->config_ = config;
  const ParamLayout& layout = model->layout();
  const ShardLayout shards(layout, /*world=*/1, /*rank=*/0);
  e->params_ = static_cast<float*>(device->Alloc(shards.local_numel() * sizeof(float)));
  ckpt::ShardTarget target{&layout, &shards, device, {}};
  target.state.push_back(StateBuffer{options.state, e->params_, shards.local_numel()});
  absl::StatusOr<ckpt::LoadStats> loaded = ckpt::LoadShard(point, target);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat(point.path, ": ", loaded.status().message()));
  }
  e->owner_ = std::move(model);
  e->model_ = classifier;
  return e;
}

absl::StatusOr<ClassifierOutputs> ClassifierEvaluator::Run(const float* images, int64_t n, int h,
                                                           int w, int c) {
  const int S = model_->image_size(), C = model_->image_channels();
  if (c != C || h <= 0 || w <= 0 || n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the classifier takes ", S, "x", S, "x", C,
                     " images (others centre-padded or cropped), got ", h, "x", w, "x", c));
  }
  ClassifierOutputs out;
  out.count = n;
  out.dim = model_->feature_dim();
  out.classes = model_->num_classes();
  out.features.resize(static_cast<size_t>(n) * out.dim);
  out.logits.resize(static_cast<size_t>(n) * out.classes);
  // Canvas pixel (y, x) reads source pixel (y - top, x - left): ImageSource's
  // centring when padding (top = (S - h) / 2 >= 0), its exact inverse when
  // cropping (top = -((h - S) / 2) <= 0).
  const int top = h <= S ? (S - h) / 2 : -((h - S) / 2);
  const int left = w <= S ? (S - w) / 2 : -((w - S) / 2);
  const size_t image = static_cast<size_t>(S) * S * C;
  std::vector<float> canvas(static_cast<size_t>(options_.batch) * image);
  std::vector<void*> units = model_->UnitPointers(params_, DType::kF32);
  for (int64_t start = 0; start < n; start += options_.batch) {
    const int b = static_cast<int>(std::min<int64_t>(options_.batch, n - start));
    const float* src = images + static_cast<size_t>(start) * h * w * c;
    if (h == S && w == S) {
      std::copy(src, src + b * image, canvas.begin());
    } else {
      for (int i = 0; i < b; ++i) {
        for (int y = 0; y < S; ++y) {
          for (int x = 0; x < S; ++x) {
            const int sy = y - top, sx = x - left;
            const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
            float* dst = canvas.data() + i * image + (static_cast<size_t>(y) * S + x) * C;
            if (!inside) {  // (the source address is formed only for pixels inside it)
              std::fill(dst, dst + C, -1.0f);
              continue;
            }
            const float* from = src + ((static_cast<size_t>(i) * h + sy) * w + sx) * c;
            std::copy(from, from + C, dst);
          }
        }
      }
    }
    RETURN_IF_ERROR(model_->SetImages(canvas.data(), nullptr, b));
    for (int u = 0; u < model_->num_units(); ++u) model_->Forward(u, units);
    model_->CopyFeatures(out.features.data() + static_cast<size_t>(start) * out.dim);
    model_->CopyLogits(out.logits.data() + static_cast<size_t>(start) * out.classes);
  }
  return out;
}

absl::StatusOr<ClassifierOutputs> ClassifierEvaluator::Run(const ImageDataset& data, int64_t begin,
                                                           int64_t n) {
  if (begin < 0 || n < 0 || begin + n > data.count) {
    return absl::InvalidArgumentError(absl::StrCat("images [", begin, ", ", begin + n, ") of ",
                                                   data.source, " (", data.count, " images)"));
  }
  const size_t px = static_cast<size_t>(data.sample_bytes());
  std::vector<float> x(static_cast<size_t>(n) * px);
  const uint8_t* src = data.image(begin);
  for (size_t i = 0; i < x.size(); ++i) x[i] = ToUnitRange(src[i]);
  return Run(x.data(), n, data.height, data.width, data.channels);
}

}  // namespace anvil::eval

#include "runtime/data/image_source.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil {

absl::StatusOr<std::unique_ptr<ImageSource>> ImageSource::Create(
    ImageDataset data, const ImageSourceOptions& options) {
  std::unique_ptr<ImageSource> s(new ImageSource);
  s->out_h_ = data.height;
  s->out_w_ = data.width;
  if (options.pad > 0) {
    if (options.pad < data.height || options.pad < data.width) {
      return absl::InvalidArgumentError(absl::StrCat("--image_pad ", options.pad,
                                                     " is smaller than the ", data.width, "x",
                                                     data.height, " images of ", data.source));
    }
    s->out_h_ = s->out_w_ = options.pad;
  } else if (options.pad < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--image_pad must be >= 0, got ", options.pad));
  }
  absl::StatusOr<ImageSampler> sampler = ImageSampler::Create(data.count, options.sampler);
  if (!sampler.ok()) {
    if (!absl::StartsWith(sampler.status().message(), "data set too small")) {
      return sampler.status();
    }
    return absl::InvalidArgumentError(absl::StrCat(data.source, ": ", sampler.status().message()));
  }
  s->sampler_ = std::make_unique<ImageSampler>(std::move(*sampler));
  if (options.schedule.has_value()) {
    const diffusion::NoiserOptions& no = options.noiser;
    if (!(no.label_dropout >= 0 && no.label_dropout <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--label_dropout must be in [0, 1], got ", no.label_dropout));
    }
    if (no.num_classes < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--num_classes must be >= 0, got ", no.num_classes));
    }
    if (no.num_classes > 0 && data.labelled() && data.num_classes > no.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("--num_classes ", no.num_classes, " but ",
                                                     data.source, " has ", data.num_classes,
                                                     " classes"));
    }
    ASSIGN_OR_RETURN(diffusion::NoiseSchedule sch,
                     diffusion::NoiseSchedule::Create(*options.schedule));
    s->schedule_ = std::make_unique<diffusion::NoiseSchedule>(std::move(sch));
    s->noiser_ = std::make_unique<diffusion::TrainingNoiser>(s->schedule_.get(), no);
  }
  s->data_ = std::move(data);
  s->options_ = options;
  const int B = options.sampler.batch_size;
  const size_t n = static_cast<size_t>(B) * s->out_h_ * s->out_w_ * s->data_.channels;
  s->draws_.resize(B);
  s->images_.resize(n);
  s->labels_.resize(B);
  if (s->noiser_) {
    s->x_t_.resize(n);
    s->target_.resize(n);
    s->timesteps_.resize(B);
    s->labels_out_.resize(B);
    s->dropout_seeds_.resize(B);
  }
  return s;
}

void ImageSource::CutImage(const ImageDraw& draw, float* dst) const {
  const int H = data_.height, W = data_.width, C = data_.channels;
  const int top = (out_h_ - H) / 2, left = (out_w_ - W) / 2;
  if (out_h_ != H || out_w_ != W) {
    std::fill(dst, dst + static_cast<size_t>(out_h_) * out_w_ * C, -1.0f);
  }
  const uint8_t* src = data_.image(static_cast<int64_t>(draw.item));
  for (int y = 0; y < H; ++y) {
    float* row = dst + (static_cast<size_t>(y + top) * out_w_ + left) * C;
    for (int x = 0; x < W; ++x) {
      const int sx = draw.flip ? W - 1 - x : x;
      const uint8_t* px = src + (static_cast<size_t>(y) * W + sx) * C;
      for (int c = 0; c < C; ++c) row[x * C + c] = ToUnitRange(px[c]);
    }
  }
}

absl::Status ImageSource::Next(Batch* batch) {
  uint64_t global_batch = 0;
  sampler_->Next(draws_.data(), &global_batch);
  const int B = options_.sampler.batch_size;
  const int64_t per = static_cast<int64_t>(out_h_) * out_w_ * data_.channels;
  for (int b = 0; b < B; ++b) {
    CutImage(draws_[b], images_.data() + b * per);
    labels_[b] = data_.labelled() ? data_.labels[draws_[b].item] : 0;
  }
  const std::vector<int64_t> image_shape = {B, out_h_, out_w_, data_.channels};
  const std::vector<int64_t> vec_shape = {B};
  batch->Clear();
  if (!noiser_) {
    batch->Set("images", {DType::kF32, image_shape, images_.data()});
    batch->Set("labels", {DType::kI32, vec_shape, labels_.data()});
    return absl::OkStatus();
  }
  diffusion::NoiserBatch nb;
  nb.batch = B;
  nb.sample_numel = per;
  nb.x0 = images_.data();
  nb.labels = data_.labelled() ? labels_.data() : nullptr;
  nb.step = global_batch;
  nb.first_index = static_cast<uint64_t>(options_.sampler.rank) * B;
  nb.x_t = x_t_.data();
  nb.timesteps = timesteps_.data();
  nb.labels_out = labels_out_.data();
  nb.target = target_.data();
  nb.dropout_seeds = dropout_seeds_.data();
  noiser_->Apply(nb);
  batch->Set("x_t", {DType::kF32, image_shape, x_t_.data()});
  batch->Set("timesteps", {DType::kI32, vec_shape, timesteps_.data()});
  batch->Set("labels", {DType::kI32, vec_shape, labels_out_.data()});
  batch->Set("target", {DType::kF32, image_shape, target_.data()});
  batch->Set("dropout_seeds", {DType::kI32, vec_shape, dropout_seeds_.data()});
  return absl::OkStatus();
}

void ImageSource::SaveState(proto::TrainingState* state) const {
  const ImageSamplerState ss = sampler_->state();
  auto* sp = state->mutable_train_sampler();
  sp->set_seed(options_.sampler.seed);
  sp->set_epoch(ss.epoch);
  sp->set_cursor(ss.cursor);
  sp->set_shard(0);
  sp->set_position(0);
}

absl::Status ImageSource::RestoreState(const proto::TrainingState& state) {
  // A changed --seed is reported by the resume check and takes effect.
  return sampler_->Restore({state.train_sampler().epoch(), state.train_sampler().cursor()});
}

}  // namespace anvil

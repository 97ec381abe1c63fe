#include "runtime/data/image_data_config.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/init_rng.h"
#include "runtime/data/idx_reader.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/image_source.h"
#include "runtime/diffusion/process_config.h"

namespace anvil {
namespace {

bool UsesDefault(const proto::DataConfig& d) {
  return d.image_root().empty() && d.train_images().empty();
}

std::string DefaultFile(const char* name) { return absl::StrCat(kDefaultImageDir, "/", name); }

}  // namespace

bool HasImageValData(const proto::DataConfig& d) {
  if (!d.image_root().empty()) return !d.val_image_root().empty();
  return UsesDefault(d) || !d.val_images().empty();
}

absl::StatusOr<ImageDataset> LoadImageData(const proto::DataConfig& d, Split split) {
  const bool train = split == Split::kTrain;
  if (!d.image_root().empty() && !d.train_images().empty()) {
    return absl::InvalidArgumentError("--image_root and --train_images both set: pick one");
  }
  if (!d.image_root().empty()) {
    const std::string& root = train ? d.image_root() : d.val_image_root();
    if (root.empty()) return absl::InvalidArgumentError("--val_image_root is empty");
    absl::StatusOr<ImageDataset> ds = ReadImageFolder(root);
    if (!ds.ok()) return ds.status();
    return ds;
  }
  if (UsesDefault(d)) {
    const std::string images =
        DefaultFile(train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz");
    const std::string labels =
        DefaultFile(train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz");
    std::error_code ec;
    if (!std::filesystem::exists(images, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat(images,
                       ": default data set not found; install Debian's dataset-fashion-mnist "
                       "(scripts/setup.sh) or set --train_images or --image_root"));
    }
    return ReadIdx(images, labels);
  }
  const std::string& images = train ? d.train_images() : d.val_images();
  const std::string& labels = train ? d.train_labels() : d.val_labels();
  if (images.empty()) return absl::InvalidArgumentError("--val_images is empty");
  return ReadIdx(images, labels);
}

absl::StatusOr<std::unique_ptr<DataSource>> OpenImageSource(DataKind kind,
                                                            const proto::TrainConfig& config,
                                                            const DataSourceOptions& options) {
  const proto::DataConfig& d = config.data();
  ASSIGN_OR_RETURN(ImageDataset data, LoadImageData(d, options.split));
  ImageSourceOptions so;
  so.sampler.batch_size = d.batch_size();
  so.sampler.rank = options.rank;
  so.sampler.world_size = options.world_size;
  so.sampler.seed = config.seed();
  so.sampler.shuffle = options.split == Split::kTrain;
  so.sampler.hflip = options.split == Split::kTrain && d.hflip();
  so.pad = d.image_pad();
  if (kind == DataKind::kImages && !data.labelled()) {
    return absl::InvalidArgumentError(absl::StrCat(data.source,
                                                   ": this model needs labels and the data has none"
                                                   " (set --train_labels)"));
  }
  if (kind == DataKind::kDiffusion) {
    const proto::DiffusionConfig& dc = config.diffusion();
    ASSIGN_OR_RETURN(const diffusion::ProcessSettings process, diffusion::ProcessFromConfig(dc));
    so.schedule = process.schedule;
    so.noiser.prediction = process.prediction;
    so.noiser.label_dropout = dc.label_dropout();
    so.noiser.num_classes = dc.num_classes() >= 0 ? dc.num_classes() : data.num_classes;
    // Validation draws noise of its own, the same at every evaluation.
    so.noiser.seed = options.split == Split::kTrain
                         ? config.seed()
                         : SplitMix64(config.seed() ^ 0x9a5c3e1f7b2d4068ULL);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> s, ImageSource::Create(std::move(data), so));
  return std::unique_ptr<DataSource>(std::move(s));
}

}  // namespace anvil

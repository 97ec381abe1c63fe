// The image data of a run, read from the config's data fields:
//   --image_root DIR          ImageFolder (val: --val_image_root)
//   --train_images FILE       IDX images (+ --train_labels; val: --val_images/--val_labels)
//   neither                   Debian's Fashion-MNIST (dataset-fashion-mnist):
//                             train-* for training, t10k-* for validation
// and the ImageSource of a DataKind (kImages or kDiffusion) over it. The
// diffusion fields (proto DiffusionConfig) fall back to the documented
// defaults when unset: linear schedule, T = 1000, eps, label dropout 0.1,
// the data set's number of classes.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/data/data_source.h"
#include "runtime/data/image_dataset.h"

namespace anvil {

inline constexpr char kDefaultImageDir[] = "/usr/share/datasets/fashion-mnist";

// The split's data set; errors name the flag or file.
absl::StatusOr<ImageDataset> LoadImageData(const proto::DataConfig& data, Split split);

// Whether the config names (or defaults to) a validation split of images.
bool HasImageValData(const proto::DataConfig& data);

absl::StatusOr<std::unique_ptr<DataSource>> OpenImageSource(DataKind kind,
                                                            const proto::TrainConfig& config,
                                                            const DataSourceOptions& options);

}  // namespace anvil

// The UNet's entry in the model registry (--model unet, DataKind::kDiffusion):
// config conversion from the ModelConfig fields (image_size, image_channels,
// image_classes, norm_groups, n_head, norm_eps, unet_*), validation against
// the run (the data's padded size, the diffusion's class count), sizes and
// construction. No Hugging Face interchange.
#pragma once

#include "absl/status/statusor.h"
#include "models/model_spec.h"
#include "models/unet/unet_config.h"
#include "proto/config.pb.h"

namespace anvil {

absl::StatusOr<UNetConfig> ToUNetConfig(const proto::ModelConfig& m);

ModelSpec UNetSpec();

}  // namespace anvil

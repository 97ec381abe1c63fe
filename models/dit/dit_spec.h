// The DiT's ModelSpec (`--model dit`): its flags are n_layer, n_head,
// n_embd, patch_size, image_size, image_channels, num_classes, learned_pos.
#pragma once

#include "models/dit/dit_config.h"
#include "models/model_spec.h"

namespace anvil {

DitConfig ToDitConfig(const proto::ModelConfig& m);
ModelSpec DitSpec();

}  // namespace anvil

// The classifier's entry in the model registry (--model classifier): a
// small CNN trained on labelled images (DataKind::kImages) whose features
// and logits the quality metric of generated images reads (runtime/eval).
// Model fields: --n_embd is the feature width D, --image_size and
// --image_channels the input shape, --model_num_classes the class count; the
// GPT fields (--n_layer, --n_head, ...) are ignored. No Hugging Face naming.
#pragma once

#include "models/classifier/classifier_config.h"
#include "models/model_spec.h"
#include "proto/config.pb.h"

namespace anvil {

ClassifierConfig ToClassifierConfig(const proto::ModelConfig& m);

ModelSpec ClassifierSpec();

}  // namespace anvil

// The classifier's entry in the model registry (--model classifier): a
// small CNN trained on labelled images (DataKind::kImages) whose features
// and logits the quality metric of generated images reads (runtime/eval).
// Model fields: --n_embd is the feature width D, --image_size and
// --image_channels the input shape, --image_classes the class count; the
// GPT fields (--n_layer, --n_head, ...) are ignored. No Hugging Face naming.
//
// Training it for the quality metric (Fashion-MNIST, the default data):
//   train --model classifier --n_embd 64 --batch_size 64 --lr 2e-2
//         --grad_clip 0 --weight_decay 0 --steps 300 --checkpoint_dir DIR
// reaches 83% test accuracy (~15 s on 2 idle cores); --steps 1500, 88.7%
// (3.5 CPU-minutes); `classifier_eval --checkpoint DIR` prints both numbers
// and the Fréchet floor. Add --image_pad 32 --image_size 32 for padded data
// (not needed to evaluate padded samples: runtime/eval crops them).
#pragma once

#include "models/classifier/classifier_config.h"
#include "models/model_spec.h"
#include "proto/config.pb.h"

namespace anvil {

ClassifierConfig ToClassifierConfig(const proto::ModelConfig& m);

ModelSpec ClassifierSpec();

}  // namespace anvil

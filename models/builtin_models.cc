// The models that ship with anvil: one line each. A model's whole definition
// lives in its folder (models/<kind>/); this list is all the runtime needs.
#include "models/classifier/classifier_spec.h"
#include "models/dit/dit_spec.h"
#include "models/gpt/gpt_spec.h"
#include "models/llama/llama_spec.h"
#include "models/model_registry.h"
#include "models/unet/unet_spec.h"

namespace anvil {

void RegisterBuiltinModels() {
  for (ModelSpec spec : {GptSpec(), LlamaSpec(), UNetSpec(), DitSpec(), ClassifierSpec()}) {
    // Built-in kinds are distinct: registration cannot fail.
    (void)RegisterModel(std::move(spec));
  }
}

}  // namespace anvil

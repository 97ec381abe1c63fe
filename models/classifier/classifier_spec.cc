#include "models/classifier/classifier_spec.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "models/classifier/classifier.h"

namespace anvil {

ClassifierConfig ToClassifierConfig(const proto::ModelConfig& m) {
  ClassifierConfig c;
  c.image_size = m.image_size();
  c.image_channels = m.image_channels();
  c.num_classes = m.image_classes();
  c.width = m.n_embd();
  return c;
}

ModelSpec ClassifierSpec() {
  ModelSpec s;
  s.kind = "classifier";
  s.data = DataKind::kImages;
  s.validate = [](const proto::TrainConfig& c) -> absl::Status {
    const ClassifierConfig cc = ToClassifierConfig(c.model());
    RETURN_IF_ERROR(ValidateClassifierConfig(cc));
    const int pad = c.data().image_pad();
    if (pad > 0 && pad != cc.image_size) {
      return absl::InvalidArgumentError(absl::StrCat("--image_pad (", pad,
                                                     ") pads images to a side other than "
                                                     "--image_size (",
                                                     cc.image_size, ")"));
    }
    return absl::OkStatus();
  };
  s.describe = [](const proto::ModelConfig& m) {
    const ClassifierConfig c = ToClassifierConfig(m);
    return absl::StrFormat("Classifier D=%d %dx%dx%d K=%d", c.width, c.image_size, c.image_size,
                           c.image_channels, c.num_classes);
  };
  s.param_count = [](const proto::ModelConfig& m) {
    return ClassifierParamCount(ToClassifierConfig(m));
  };
  s.activation_bytes = [](const proto::TrainConfig& c) {
    return ClassifierActivationBytesEstimate(ToClassifierConfig(c.model()), c.data().batch_size());
  };
  s.create = [](const proto::ModelConfig& m, const ModelBuildOptions& o,
                kernels::Device* device) -> absl::StatusOr<std::unique_ptr<UnitModel>> {
    ClassifierOptions co;
    co.max_batch = o.max_batch;
    co.compute_dtype = o.compute_dtype;
    ASSIGN_OR_RETURN(std::unique_ptr<Classifier> model,
                     Classifier::Create(ToClassifierConfig(m), co, device));
    return std::unique_ptr<UnitModel>(std::move(model));
  };
  return s;
}

}  // namespace anvil

#include "models/dit/dit_spec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "models/dit/dit.h"

namespace anvil {

DitConfig ToDitConfig(const proto::ModelConfig& m) {
  DitConfig c;
  c.n_layer = m.n_layer();
  c.n_head = m.n_head();
  c.n_embd = m.n_embd();
  c.patch_size = m.patch_size();
  c.image_size = m.image_size();
  c.image_channels = m.image_channels();
  c.num_classes = m.image_classes();
  c.learned_pos = m.learned_pos();
  return c;
}

ModelSpec DitSpec() {
  ModelSpec s;
  s.kind = "dit";
  s.data = DataKind::kDiffusion;
  s.validate = [](const proto::TrainConfig& c) -> absl::Status {
    const proto::ModelConfig& m = c.model();
    auto unsupported = [](const char* flag, bool differs) {
      return differs ? absl::InvalidArgumentError(absl::StrCat(
                           "--", flag, " is not supported by --model dit (leave it unset)"))
                     : absl::OkStatus();
    };
    RETURN_IF_ERROR(unsupported("n_kv_head", m.n_kv_head() != 0 && m.n_kv_head() != m.n_head()));
    RETURN_IF_ERROR(
        unsupported("ffn_hidden", m.ffn_hidden() != 0 && m.ffn_hidden() != 4 * m.n_embd()));
    RETURN_IF_ERROR(unsupported("rope_theta", m.has_rope_theta() && m.rope_theta() != 10000.0f));
    // models.py's LayerNorms use 1e-6; the schema default (1e-5, the GPT's)
    // is accepted as "the model's own".
    if (m.has_norm_eps() && m.norm_eps() != 1e-5f && m.norm_eps() != 1e-6f) {
      return absl::InvalidArgumentError(
          "--norm_eps is not supported by --model dit (its LayerNorms use 1e-6)");
    }
    const DitConfig d = ToDitConfig(m);
    RETURN_IF_ERROR(ValidateDitConfig(d));
    const int pad = c.data().image_pad();
    if (pad > 0 && pad != d.image_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("--image_size (", d.image_size, ") must equal --image_pad (", pad, ")"));
    }
    const int data_classes = c.diffusion().num_classes();
    if (data_classes >= 0 && data_classes != d.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("--image_classes (", d.num_classes,
                                                     ") must equal --num_classes (", data_classes,
                                                     ")"));
    }
    return absl::OkStatus();
  };
  s.describe = [](const proto::ModelConfig& m) {
    const DitConfig c = ToDitConfig(m);
    return absl::StrFormat("DiT L=%d H=%d C=%d p=%d image=%dx%dx%d T=%d classes=%d%s", c.n_layer,
                           c.n_head, c.n_embd, c.patch_size, c.image_size, c.image_size,
                           c.image_channels, DitTokens(c), c.num_classes,
                           c.learned_pos ? " learned-pos" : "");
  };
  s.param_count = [](const proto::ModelConfig& m) { return DitParamCount(ToDitConfig(m)); };
  s.activation_bytes = [](const proto::TrainConfig& c) {
    return DitActivationBytesEstimate(ToDitConfig(c.model()), c.data().batch_size());
  };
  s.create = [](const proto::ModelConfig& m, const ModelBuildOptions& o,
                kernels::Device* device) -> absl::StatusOr<std::unique_ptr<UnitModel>> {
    DitOptions d;
    d.max_batch = o.max_batch;
    d.compute_dtype = o.compute_dtype;
    d.recompute = o.recompute;
    ASSIGN_OR_RETURN(std::unique_ptr<Dit> model, Dit::Create(ToDitConfig(m), d, device));
    return std::unique_ptr<UnitModel>(std::move(model));
  };
  return s;
}

}  // namespace anvil

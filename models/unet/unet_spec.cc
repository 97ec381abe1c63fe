#include "models/unet/unet_spec.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "models/unet/unet.h"

namespace anvil {

absl::StatusOr<UNetConfig> ToUNetConfig(const proto::ModelConfig& m) {
  UNetConfig c;
  c.image_size = m.image_size();
  c.image_channels = m.image_channels();
  c.channels = m.unet_channels();
  ASSIGN_OR_RETURN(c.channel_mult, ParseIntList(m.unet_channel_mult(), "unet_channel_mult"));
  c.blocks_per_level = m.unet_blocks();
  ASSIGN_OR_RETURN(c.attention_res, ParseIntList(m.unet_attention_res(), "unet_attention_res"));
  c.norm_groups = m.norm_groups();
  c.n_head = m.n_head();
  c.num_classes = m.image_classes();
  c.norm_eps = m.has_norm_eps() ? m.norm_eps() : 1e-5f;
  c.dropout = m.unet_dropout();
  return c;
}

namespace {

// Fallback for the size callbacks of an invalid config (validate reports it).
UNetConfig SizedOrDefault(const proto::ModelConfig& m) {
  absl::StatusOr<UNetConfig> c = ToUNetConfig(m);
  if (!c.ok() || !ValidateUNetConfig(*c).ok()) return UNetConfig{};
  return *c;
}

}  // namespace

ModelSpec UNetSpec() {
  ModelSpec s;
  s.kind = "unet";
  s.data = DataKind::kDiffusion;
  s.validate = [](const proto::TrainConfig& t) -> absl::Status {
    ASSIGN_OR_RETURN(const UNetConfig c, ToUNetConfig(t.model()));
    RETURN_IF_ERROR(ValidateUNetConfig(c));
    const int pad = t.data().image_pad();
    if (pad > 0 && pad != c.image_size) {
      return absl::InvalidArgumentError(absl::StrCat("--image_pad (", pad,
                                                     ") must equal --image_size (", c.image_size,
                                                     ") for --model unet"));
    }
    const int dk = t.diffusion().num_classes();
    if (dk >= 0 && dk != c.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--num_classes (", dk, ") must equal --image_classes (", c.num_classes,
          ") for --model unet, or be -1 (the data's classes)"));
    }
    return absl::OkStatus();
  };
  s.describe = [](const proto::ModelConfig& m) {
    const UNetConfig c = SizedOrDefault(m);
    return absl::StrFormat("UNet %dx%dx%d ch=%d mult=%s blocks=%d attn=%s groups=%d heads=%d "
                           "classes=%d",
                           c.image_size, c.image_size, c.image_channels, c.channels,
                           absl::StrJoin(c.channel_mult, ","), c.blocks_per_level,
                           absl::StrJoin(c.attention_res, ","), c.norm_groups, c.n_head,
                           c.num_classes);
  };
  s.param_count = [](const proto::ModelConfig& m) {
    return static_cast<double>(UNetNumParams(SizedOrDefault(m)));
  };
  s.activation_bytes = [](const proto::TrainConfig& t) {
    return UNetActivationBytesEstimate(SizedOrDefault(t.model()), t.data().batch_size());
  };
  s.create = [](const proto::ModelConfig& m, const ModelBuildOptions& o,
                kernels::Device* device) -> absl::StatusOr<std::unique_ptr<UnitModel>> {
    ASSIGN_OR_RETURN(const UNetConfig c, ToUNetConfig(m));
    UNetOptions u;
    u.max_batch = o.max_batch;
    u.compute_dtype = o.compute_dtype;
    u.recompute = o.recompute;
    ASSIGN_OR_RETURN(std::unique_ptr<UNet> model, UNet::Create(c, u, device));
    return std::unique_ptr<UnitModel>(std::move(model));
  };
  return s;
}

}  // namespace anvil

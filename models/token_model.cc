#include "models/token_model.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil {

absl::Status TokenModel::SetBatch(const Batch& batch) {
  ASSIGN_OR_RETURN(const BatchTensor tokens, batch.Get("tokens", DType::kI32, 2));
  ASSIGN_OR_RETURN(const BatchTensor targets, batch.Get("targets", DType::kI32, 2));
  if (tokens.shape != targets.shape) {
    return absl::InvalidArgumentError("batch tensors 'tokens' and 'targets' differ in shape");
  }
  const int B = static_cast<int>(tokens.shape[0]);
  const int T = static_cast<int>(tokens.shape[1]);
  RETURN_IF_ERROR(SetBatch(static_cast<const int32_t*>(tokens.data),
                           static_cast<const int32_t*>(targets.data), B, T));
  seq_len_ = T;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> TokenModel::CopyTokens(kernels::Device& device, const int32_t* inputs,
                                               const int32_t* targets, int B, int T,
                                               int max_batch, int max_seq, int vocab,
                                               int32_t* dev_inputs, int32_t* dev_targets) {
  if (B <= 0 || B > max_batch) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", B, " outside 1..", max_batch));
  }
  if (T <= 0 || T > max_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence length ", T, " outside 1..", max_seq));
  }
  int64_t valid = 0;
  for (int i = 0; i < B * T; ++i) {
    if (inputs[i] < 0 || inputs[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", inputs[i], " at position ", i,
                                                     " outside vocab 0..", vocab - 1));
    }
    if (targets != nullptr && targets[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat("target id ", targets[i], " at position ", i,
                                                     " outside vocab 0..", vocab - 1));
    }
    if (targets != nullptr && targets[i] >= 0) ++valid;
  }
  device.CopyFromHost(dev_inputs, inputs, sizeof(int32_t) * B * T);
  if (targets != nullptr) {
    device.CopyFromHost(dev_targets, targets, sizeof(int32_t) * B * T);
  } else {
    device.Memset(dev_targets, 0xff, sizeof(int32_t) * B * T);  // all -1: no loss
  }
  return valid;
}

SampleWork TokenModel::work_per_sample() const {
  SampleWork w;
  w.unit = "tokens";
  w.items = seq_len_;
  w.train_flops = seq_len_ > 0 ? FlopsPerToken(seq_len_) * seq_len_ : 0;
  return w;
}

}  // namespace anvil

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

SampleWork TokenModel::work_per_sample() const {
  SampleWork w;
  w.unit = "tokens";
  w.items = seq_len_;
  w.train_flops = seq_len_ > 0 ? FlopsPerToken(seq_len_) * seq_len_ : 0;
  return w;
}

}  // namespace anvil

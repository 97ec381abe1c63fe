// TokenModel: the UnitModel of a language model, fed token ids.
//
// It reads the "tokens" and "targets" tensors ((B,T) I32, targets < 0
// ignored) of a Batch and hands them to the model's token entry point; the
// throughput unit is the token and one sample (a sequence) is T of them.
// GPT, Llama and the test MLP derive from it and implement only the token
// forms.
#pragma once

#include <cstdint>

#include "models/unit_model.h"

namespace anvil {

class TokenModel : public UnitModel {
 public:
  absl::Status SetBatch(const Batch& batch) final;
  SampleWork work_per_sample() const final;

  // inputs, targets: (B,T) host int32. Fails for B, T beyond the arena or
  // ids out of range.
  virtual absl::Status SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) = 0;
  // Number of targets >= 0 in the last batch.
  virtual int64_t NumTargets() const = 0;
  // Training FLOPs per token (forward + backward) at sequence length T.
  virtual double FlopsPerToken(int T) const = 0;

 private:
  int seq_len_ = 0;  // T of the last batch set through a Batch
};

}  // namespace anvil

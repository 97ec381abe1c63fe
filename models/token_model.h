// TokenModel: the UnitModel of a language model, fed token ids.
//
// It reads the "tokens" and "targets" tensors ((B,T) I32, targets < 0
// ignored) of a Batch and hands them to the model's token entry point; the
// throughput unit is the token and one sample (a sequence) is T of them.
// GPT, Llama and the test MLP derive from it and implement only the token
// forms.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/device.h"
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

 protected:
  // The shared part of a token model's SetBatch: checks B <= max_batch,
  // T <= max_seq and every id against the vocabulary, then copies inputs and
  // targets into device memory (targets null: all -1, no loss). Returns the
  // number of valid targets.
  absl::StatusOr<int64_t> CopyTokens(kernels::Device& device, const int32_t* inputs,
                                     const int32_t* targets, int B, int T, int max_batch,
                                     int max_seq, int vocab, int32_t* dev_inputs,
                                     int32_t* dev_targets);

 private:
  int seq_len_ = 0;  // T of the last batch set through a Batch
};

}  // namespace anvil

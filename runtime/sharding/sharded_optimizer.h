// ShardedOptimizer: the optimizer step on the rank's shard, and the state it
// keeps.
//
// It owns the persistent state as a named list of shard buffers (state()):
// "params" (fp32 master weights), "adam_m", "adam_v". A step is two calls:
// Check reduces, in one all-reduce over the world, what the step needs from
// every rank (the mean loss, the squared global gradient norm, how many ranks
// found inf/NaN) and decides. Those scalars live in a small device buffer:
// the loss accumulates there over the micro-batches (AddLoss), Check adds
// the norm and the inf/NaN flag on the device, all-reduces the buffer on the
// comm stream and reads it back once — the step's only host
// synchronisation. A step with a non-finite gradient anywhere is
// skipped on every rank (the loss scaler backs off); otherwise Apply clips
// to grad_clip by the global norm, unscales and runs AdamW on each unit's
// slice of the shard, calling `after_unit(u)` after unit u so the caller can
// start gathering updated parameters behind the remaining work.
//
// With ema_decay > 0 the state holds one more buffer, "ema": an exponential
// moving average of the fp32 weights, on the local shard like the rest,
// initialised to the initial weights (ResetEma) and updated right after each
// unit's AdamW step with diffusers' warm-up: the t-th applied step
// (t = step() before it, 0-based) uses d_t = 0 for t = 0, else
// min(ema_decay, (1 + t) / (10 + t)); ema = d_t * ema + (1 - d_t) * params.
// A skipped step updates neither the weights nor the EMA.
//
// Invariants: every rank makes the same skip decision and the same clipping
// factor (both come from the all-reduced sums); state buffers never move
// (their addresses are valid for the optimizer's lifetime), so callers may
// hold pointers into them; padding elements are never updated.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/tensor.h"
#include "models/param_layout.h"
#include "runtime/optim/adamw.h"
#include "runtime/sharding/loss_scaler.h"
#include "runtime/sharding/sharding_context.h"
#include "runtime/sharding/state_buffer.h"

namespace anvil {

struct StepResult {
  double loss = 0;        // mean over all ranks' micro-batches
  double grad_norm = 0;   // global, unscaled, before clipping
  bool skipped = false;   // inf/NaN found on some rank (fp16)
  float loss_scale = 1;   // scale used for this step
};

struct ShardedOptimizerOptions {
  AdamWConfig adamw;
  float grad_clip = 1.0f;  // <= 0: no clipping
  bool use_scaler = false;   // dynamic loss scaling (fp16)
  LossScalerOptions scaler;
  float ema_decay = 0;  // > 0: keep the "ema" state buffer
};

// The EMA decay the t-th applied optimizer step (0-based) uses.
float EmaDecayAt(float ema_decay, int64_t t);

class ShardedOptimizer {
 public:
  ShardedOptimizer(ShardingContext* ctx, const ParamLayout& layout,
                   const ShardedOptimizerOptions& options);
  ~ShardedOptimizer();
  ShardedOptimizer(const ShardedOptimizer&) = delete;
  ShardedOptimizer& operator=(const ShardedOptimizer&) = delete;

  // The persistent state, in a fixed order ("params" first).
  const StateList& state() const { return state_; }
  float* params() const { return state_[0].data; }
  // The "ema" buffer, or null without an EMA.
  float* ema() const { return ema_index_ >= 0 ? state_[ema_index_].data : nullptr; }
  // ema = params (a fresh start, or a checkpoint saved without an EMA).
  void ResetEma();

  // Adds scale * sum(terms) (device memory) to this rank's step loss.
  void AddLoss(const kernels::TensorView& terms, double scale);
  // Adds a host value to this rank's step loss (models without loss terms).
  void AddHostLoss(double loss);
  // Replaces this rank's step loss by `local_loss` (its mean over the
  // step's micro-batches).
  void SetLoss(double local_loss);
  // The global loss and gradient norm of `grads` (the averaged local
  // gradient shard), and whether the step must be skipped (then the scaler
  // has already backed off). Starts the next step's loss at zero.
  absl::StatusOr<StepResult> Check(const float* grads);
  // AdamW on the local shard with the clipping and unscaling `checked`
  // implies; then counts the step.
  using UnitHook = std::function<absl::Status(int unit)>;
  absl::Status Apply(float lr, const StepResult& checked, const float* grads,
                     const UnitHook& after_unit);

  // The scale backward multiplies d(loss) by (1 without loss scaling).
  float backward_scale() const { return options_.use_scaler ? scaler_.scale() : 1.0f; }
  LossScaler& scaler() { return scaler_; }
  int64_t step() const { return step_; }
  void set_step(int64_t s);

 private:
  ShardingContext* ctx_;
  ShardedOptimizerOptions options_;
  StateList state_;
  std::vector<std::unique_ptr<AdamW>> adamw_;  // per unit; null for an empty slice
  void UpdateEma(size_t offset, size_t n, float decay);

  int world_size() const;

  LossScaler scaler_;
  int64_t step_ = 0;
  // Device: {loss, squared norm, inf/NaN flag, host loss staging}; the first
  // three are the all-reduced payload (kScalars floats).
  float* scalars_ = nullptr;
  int ema_index_ = -1;            // index of "ema" in state_
  float* ema_scratch_ = nullptr;  // (1 - d) * params, chunk by chunk
  size_t ema_scratch_numel_ = 0;
};

}  // namespace anvil

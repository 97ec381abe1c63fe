// ShardedEngine: FSDP-style data parallelism around any UnitModel, as the
// composition of three pieces over one ShardingContext:
//   ParamGatherer     per-unit all-gather of parameters in the compute dtype,
//                     prefetch window, resharding, the kept-gathered set;
//   GradReducer       per-unit reduce-scatter once gradients are final, or
//                     DDP bucket all-reduce (Bucketer) without sharding;
//   ShardedOptimizer  global norm, clipping, loss-scale check, AdamW on the
//                     local shard; owns the named state buffers.
// The model never sees a rank: it gets per-unit pointers to gathered buffers.
//
// Schedule of one micro-batch (W = shard group size):
//  forward   for u = 0..n-1: wait u's all-gather; issue the next units'
//            all-gathers (at most max_inflight_gathers outstanding); compute;
//            free u's buffer if resharding (units other units read, and the
//            last two units, which backward starts with, stay until the
//            step ends).
//  backward  for u = n-1..0: wait u's all-gather, issue u-1's (before the
//            reduce-scatter below), compute into per-unit grad buffers, then
//            issue the reduce-scatter (W > 1) of every unit whose gradient is
//            now final, or the all-reduce of every full bucket (W = 1).
//            Collectives run on the group's thread while backward continues.
//  step      wait for the reductions; one world all-reduce of loss, squared
//            norm and inf count, kept on the device and read back once
//            (the step's only host synchronisation); AdamW unit by unit,
//            all-gathering the first units of the next forward as soon as
//            their shard is updated.
// Streams (sharding_context.h): on an asynchronous device compute runs on
// the compute stream and every collective on one comm stream, ordered by
// events both ways; transient buffers come from the device's caching
// allocator, so steady-state steps allocate no new device memory.
// Gradient accumulation: micro-batches before the last keep unsharded
// gradients and communicate nothing. All ranks issue the same collectives in
// the same order, because the order depends only on the layout and options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "models/unit_model.h"
#include "runtime/collectives/process_group.h"
#include "runtime/optim/adamw.h"
#include "runtime/sharding/grad_reducer.h"
#include "runtime/sharding/loss_scaler.h"
#include "runtime/sharding/param_gatherer.h"
#include "runtime/sharding/shard_layout.h"
#include "runtime/sharding/sharded_optimizer.h"
#include "runtime/sharding/sharding_context.h"
#include "runtime/sharding/state_buffer.h"
#include "runtime/sharding/strategy.h"

namespace anvil {

struct EngineOptions {
  ShardingStrategy strategy = ShardingStrategy::kNoShard;
  DType param_dtype = DType::kF32;   // what parameters are gathered in (the model
                                     // computes in it, or in fp32 on rounded copies)
  DType reduce_dtype = DType::kF32;  // what gradients travel in
  size_t bucket_bytes = 4u << 20;    // NO_SHARD all-reduce buckets
  size_t first_bucket_bytes = 1u << 20;
  int max_inflight_gathers = 2;
  // Reduce-scatters whose unsharded gradient buffers may be alive at once;
  // bounds backward's memory when communication is slower than compute.
  int max_inflight_reduces = 2;
  // false: wait for every collective right after issuing it. Only for
  // measuring how much communication the overlapped schedule hides.
  bool overlap = true;
  AdamWConfig adamw;
  float grad_clip = 1.0f;  // <= 0: no clipping
  LossScalerOptions scaler;  // used when param_dtype or reduce_dtype is fp16
  float ema_decay = 0;       // > 0: an "ema" state buffer (sharded_optimizer.h)
  // Tests only: DebugSkipWait bits (sharding_context.h) that drop event
  // waits, to show the stream tests catch the race they leave.
  int debug_skip_event_wait_for_testing = 0;
};

// Groups the engine communicates over. All null: a single process.
// HYBRID_SHARD needs node_local and cross_node (ProcessGroup::Split).
struct EngineGroups {
  ProcessGroup* world = nullptr;
  ProcessGroup* node_local = nullptr;
  ProcessGroup* cross_node = nullptr;
};

class ShardedEngine {
 public:
  static absl::StatusOr<std::unique_ptr<ShardedEngine>> Create(UnitModel* model,
                                                               kernels::Device* device,
                                                               const EngineGroups& groups,
                                                               const EngineOptions& options);
  ~ShardedEngine();

  // Every rank initialises its own shard, identically to a single process.
  absl::Status InitParams(uint64_t seed);
  // Loads / gathers the full fp32 parameter vector (model layout, host memory).
  // SetFullParams also starts the EMA (when there is one) at these weights.
  absl::Status SetFullParams(const float* host_full);
  absl::Status GetFullParams(float* host_full);
  // Gathers the full vector of any named state buffer ("params", "ema", ...).
  absl::Status GetFullState(const std::string& name, float* host_full);
  // Whether the state holds an "ema" buffer; ResetEma sets it to the
  // current weights (a checkpoint saved without an EMA).
  bool has_ema() const { return optimizer_->ema() != nullptr; }
  void ResetEma() { optimizer_->ResetEma(); }

  // Forward + backward of the batch already set on the model. `loss_factor`
  // scales d(loss) (1/grad_accum) and the loss added to the step's loss (on
  // the device); on the last micro-batch of a step the gradients are
  // reduced. Never waits for the device (models without loss_terms()
  // excepted).
  absl::Status RunMicroBatch(float loss_factor, bool last_micro);
  // Global norm, clipping, loss-scale check and AdamW on the local shard;
  // StepResult::loss is the mean over ranks of the micro-batch losses times
  // their loss_factor.
  absl::StatusOr<StepResult> Step(float lr);

  // The same with the loss on the host (each call reads it back): returns
  // this rank's micro-batch loss; `local_loss` replaces the step's loss.
  absl::StatusOr<double> ForwardBackward(float loss_factor, bool last_micro);
  absl::StatusOr<StepResult> Step(float lr, double local_loss);
  // Forward only; returns this rank's loss.
  absl::StatusOr<double> ForwardLoss();
  // Mean of `v` over all ranks (v itself in a single process).
  absl::StatusOr<double> MeanOverRanks(double v);

  const ShardLayout& shard_layout() const { return ctx_->shards(); }
  MemoryStats memory() const { return ctx_->memory(); }
  CommStats comm() const { return ctx_->comm(); }
  float loss_scale() const { return optimizer_->scaler().scale(); }
  LossScaler& scaler() { return optimizer_->scaler(); }
  int64_t step() const { return optimizer_->step(); }
  void set_step(int64_t s) { optimizer_->set_step(s); }
  // The rank's persistent state as named shard buffers ("params", "adam_m",
  // "adam_v", then "ema" with ema_decay > 0; see state_buffer.h), for
  // checkpoints. After
  // writing into them (a restore), call OnStateLoaded before the next step.
  const StateList& state() const { return optimizer_->state(); }
  // Drops gathered parameter copies and refreshes the compute copy from the
  // (restored) "params" buffer.
  void OnStateLoaded();
  // Ranks holding identical shards (NO_SHARD: the world; HYBRID_SHARD: one
  // per node) and this rank's index among them: checkpoints write each
  // element once.
  int replicas() const {
    const ProcessGroup* g = ctx_->groups().replicate;
    return g != nullptr ? g->size() : 1;
  }
  int replica_rank() const {
    const ProcessGroup* g = ctx_->groups().replicate;
    return g != nullptr ? g->rank() : 0;
  }

 private:
  explicit ShardedEngine(UnitModel* model) : model_(model) {}

  UnitModel* model_;
  absl::Status ForwardLossPass();
  // Declared before the pieces, which use it until they are destroyed.
  std::unique_ptr<ShardingContext> ctx_;
  std::unique_ptr<ShardedOptimizer> optimizer_;
  std::unique_ptr<ParamGatherer> gatherer_;
  std::unique_ptr<GradReducer> reducer_;
};

}  // namespace anvil

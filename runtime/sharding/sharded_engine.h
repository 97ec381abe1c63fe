// ShardedEngine: FSDP-style data parallelism around any UnitModel.
//
// It owns the rank's shard of the flat state (fp32 master params, grads, AdamW
// m and v; ShardLayout says which elements), gathers each unit's parameters
// just before the model needs them, reduces each unit's gradients as soon as
// they are final, and runs AdamW on the local shard only. The model never
// sees a rank: it gets per-unit pointers to gathered buffers.
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
// Gradient accumulation: micro-batches before the last keep unsharded
// gradients and communicate nothing. All ranks issue the same collectives in
// the same order, because the order depends only on the layout and options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kernels/device.h"
#include "models/unit_model.h"
#include "runtime/collectives/process_group.h"
#include "runtime/sharding/loss_scaler.h"
#include "runtime/sharding/shard_layout.h"
#include "runtime/sharding/strategy.h"
#include "runtime/optim/adamw.h"

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
};

// Groups the engine communicates over. All null: a single process.
// HYBRID_SHARD needs node_local and cross_node (ProcessGroup::Split).
struct EngineGroups {
  ProcessGroup* world = nullptr;
  ProcessGroup* node_local = nullptr;
  ProcessGroup* cross_node = nullptr;
};

struct StepResult {
  double loss = 0;        // mean over all ranks' micro-batches
  double grad_norm = 0;   // global, unscaled, before clipping
  bool skipped = false;   // inf/NaN found on some rank (fp16)
  float loss_scale = 1;   // scale used for this step
};

struct MemoryStats {
  size_t shard_state_bytes = 0;   // master + grads + m + v of the local shard
  size_t gathered_bytes = 0;      // gathered params / unsharded grads / staging now
  size_t gathered_peak_bytes = 0;
};

struct CommStats {
  double exposed_wait_s = 0;  // main thread blocked on collectives, in all:
  double exposed_forward_s = 0;   //   in the forward pass (parameter gathers)
  double exposed_backward_s = 0;  //   in backward and its final gradient reductions
  double exposed_step_s = 0;      //   in Step (loss, inf check, global grad norm)
  int64_t collectives = 0;
  int64_t bytes = 0;          // payload bytes issued (per rank)
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
  absl::Status SetFullParams(const float* host_full);
  absl::Status GetFullParams(float* host_full);

  // Forward + backward of the batch already set on the model. `loss_factor`
  // scales d(loss) (1/grad_accum); on the last micro-batch of a step the
  // gradients are reduced. Returns this rank's micro-batch loss.
  absl::StatusOr<double> ForwardBackward(float loss_factor, bool last_micro);
  // Global norm, clipping, loss-scale check and AdamW on the local shard.
  // `local_loss` is this rank's mean loss over the step's micro-batches.
  absl::StatusOr<StepResult> Step(float lr, double local_loss);
  // Forward only; returns this rank's loss.
  absl::StatusOr<double> ForwardLoss();
  // Mean of `v` over all ranks (v itself in a single process).
  absl::StatusOr<double> MeanOverRanks(double v);

  // Adds `value` to element `index` of this rank's gradient shard (tests:
  // inject an inf on one rank). Call between ForwardBackward and Step.
  void PoisonGradShard(size_t index, float value);

  const ShardLayout& shard_layout() const { return *shards_; }
  MemoryStats memory() const { return memory_; }
  CommStats comm() const { return comm_; }
  float loss_scale() const { return scaler_.scale(); }
  LossScaler& scaler() { return scaler_; }
  int64_t step() const { return step_; }
  void set_step(int64_t s);
  // The local shard buffers (master, m, v), for checkpoints.
  float* master() { return master_; }
  float* adam_m() { return m_; }
  float* adam_v() { return v_; }
  // Ranks holding identical shards (NO_SHARD: the world; HYBRID_SHARD: one
  // per node) and this rank's index among them: checkpoints write each
  // element once.
  int replicas() const { return replicate_group_ != nullptr ? replicate_group_->size() : 1; }
  int replica_rank() const { return replicate_group_ != nullptr ? replicate_group_->rank() : 0; }
  // Call after writing master() directly (checkpoint restore): drops gathered
  // copies and refreshes the rounded compute copy.
  void OnMasterUpdated() {
    ReleaseAllParams();
    RefreshComputeCopy();
  }

 private:
  struct Unit;
  struct Bucket;
  ShardedEngine(UnitModel* model, kernels::Device* device, const EngineOptions& options);
  absl::Status Init(const EngineGroups& groups);

  // Parameters.
  absl::Status IssueGather(int u);
  absl::Status EnsureParams(int u);
  void Prefetch(int from, int direction);
  void ReleaseParams(int u);
  void ReleaseAllParams();
  // Gradients.
  void EnsureGradBuffer(int u);
  absl::Status IssueReduce(int u);
  absl::Status IssueBucket(Bucket& b);
  absl::Status FinishReduce(int u, bool block);
  absl::Status FinishAllReduces();
  absl::Status Wait(const std::shared_ptr<Work>& w);

  void* Alloc(size_t bytes);
  void Free(void* p, size_t bytes);
  void RefreshComputeCopy();
  void Convert(void* dst, DType dst_type, const void* src, DType src_type, size_t n);
  std::vector<void*> ParamPointers() const;
  std::vector<float*> GradPointers() const;
  absl::StatusOr<double> AllReduceScalar(ProcessGroup* g, double v, ReduceOp op);

  UnitModel* model_;
  kernels::Device* device_;
  EngineOptions options_;
  DType compute_dtype_;  // what the model reads parameters in
  ProcessGroup* world_ = nullptr;
  ProcessGroup* shard_group_ = nullptr;      // null: W = 1
  ProcessGroup* replicate_group_ = nullptr;  // null: no replicas
  bool reshard_ = false;
  std::unique_ptr<ShardLayout> shards_;
  std::vector<Unit> units_;
  std::vector<Bucket> buckets_;
  std::vector<int> unit_bucket_;  // bucket holding unit u (W = 1 with replicas)
  std::vector<int> final_at_;  // backward of which unit makes unit u's grads final
  std::vector<bool> shared_;   // read by another unit: kept gathered all step
  float* master_ = nullptr;
  float* grads_ = nullptr;
  float* m_ = nullptr;
  float* v_ = nullptr;
  void* compute_ = nullptr;  // W = 1 and param_dtype != fp32: the copy the model reads
  std::vector<std::unique_ptr<AdamW>> adamw_;
  LossScaler scaler_;
  bool use_scaler_ = false;
  int inflight_gathers_ = 0;
  bool grads_live_ = false;  // unsharded grad buffers hold this step's sums
  int64_t step_ = 0;
  MemoryStats memory_;
  CommStats comm_;
  double* phase_wait_ = &comm_.exposed_forward_s;  // the phase Wait charges
};

}  // namespace anvil

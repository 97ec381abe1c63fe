// GradReducer: turns each rank's local gradients into the averaged gradient
// shard the optimizer steps with, communicating as soon as gradients are
// final.
//
// W > 1: backward writes unit u's gradient into an fp32 buffer of the unit's
// padded size. Once the last unit reading u (UnitDeps) has run its backward,
// u's gradient is final: it is (converted to reduce_dtype and)
// reduce-scattered (average). Reduce-scatters are retired oldest first: this
// rank's slice is copied into the gradient shard, the unit buffers freed and,
// with replicas (HYBRID_SHARD), the slice all-reduced across them. At most
// max_inflight_reduces unsharded gradient buffers wait on the network at once
// (backward blocks on the oldest beyond that), which bounds memory when
// communication is slower than compute.
// W = 1: backward writes straight into the gradient shard; with replicas
// (NO_SHARD) gradients are all-reduced in DDP buckets (bucketer.h) as each
// bucket fills.
// Gradient accumulation: micro-batches before the last only accumulate; the
// caller reports units to AfterBackward on the last micro-batch only.
//
// Reductions run on the comm stream (sharding_context.h); "retiring" one
// orders the compute stream after it, and "waiting" means the compute
// stream waits, not the host (except on a synchronous device).
//
// Invariants: a gradient buffer a collective used is freed only after the
// compute stream waited for it; collectives are issued in an order that depends only on the
// layout, the unit dependencies and the options (the same on every rank);
// replica all-reduces start in reduce-scatter issue order on every rank.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "models/unit_model.h"
#include "runtime/sharding/bucketer.h"
#include "runtime/sharding/sharding_context.h"

namespace anvil {

struct GradReducerOptions {
  DType reduce_dtype = DType::kF32;  // what gradients travel in
  size_t bucket_bytes = 4u << 20;    // all-reduce buckets (W = 1 with replicas)
  size_t first_bucket_bytes = 1u << 20;
  int max_inflight_reduces = 2;
};

class GradReducer {
 public:
  GradReducer(ShardingContext* ctx, const UnitModel& model, const GradReducerOptions& options);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Starts a backward pass (every micro-batch).
  void BeginBackward();
  // Makes sure unit u and the units it reads have gradient buffers to
  // accumulate into (zeroed when new).
  void PrepareUnit(int u);
  // After unit u's backward on the last micro-batch: issues the reductions
  // of every gradient that is now final and retires finished ones.
  absl::Status AfterBackward(int u);
  // Waits for every reduction and leaves the averaged gradients in grads().
  absl::Status FinishAll();

  // The local gradient shard (fp32, ShardLayout order).
  float* grads() const { return grads_; }
  void ZeroGrads();
  // The per-unit gradient buffers backward writes (null: none yet).
  std::vector<float*> pointers() const;

 private:
  struct Unit;
  struct BucketWork;
  absl::Status IssueReduce(int u);
  absl::Status FinishReduce(int u, bool block);
  absl::Status IssueBucket(int b);

  ShardingContext* ctx_;
  const UnitModel& model_;
  GradReducerOptions options_;
  ProcessGroup* shard_group_;      // null: W = 1
  ProcessGroup* replicate_group_;  // null: no replicas
  std::vector<Unit> units_;
  std::vector<int> final_at_;  // backward of which unit makes unit u's gradient final
  std::unique_ptr<Bucketer> bucketer_;  // W = 1 with replicas
  std::vector<BucketWork> bucket_work_;
  int next_to_finish_ = 0;  // reduce-scatters are retired in issue order
  float* grads_ = nullptr;
};

}  // namespace anvil

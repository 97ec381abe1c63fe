// ParamGatherer: the parameters the model reads, per unit, in its compute
// dtype.
//
// W > 1: unit u's parameters exist in full only while gathered. Gather
// converts this rank's fp32 master slice to param_dtype and all-gathers the
// unit's padded buffer; when the model computes in fp32 on a lower param
// dtype, the gathered buffer is widened to an fp32 copy once it arrives.
// Prefetch keeps at most max_inflight gathers outstanding, walking units in
// the direction of the pass (a unit's dependencies first). Units read by
// another unit (UnitDeps) form the kept-gathered set: they stay gathered
// until the step ends. Resharding (FULL_SHARD, HYBRID_SHARD) frees a unit
// after forward, except kept units and the last two units (backward starts
// with them), and after its backward.
// W = 1: every unit is always ready; the model reads the master shard itself
// (fp32) or one rounded compute copy of it, refreshed after each update.
//
// Gathers run on the comm stream (sharding_context.h): Ensure orders the
// compute stream after the unit's gather, it does not block the host.
//
// Invariants: a gathered buffer is never freed or read by compute before
// the compute stream waited for its collective (Release ensures first); the order of gathers depends only on the
// layout, the unit dependencies and the options, so it is the same on every
// rank of the shard group.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "models/unit_model.h"
#include "runtime/sharding/sharding_context.h"

namespace anvil {

class ParamGatherer {
 public:
  // `master`: the local fp32 parameter shard (ShardLayout order); read only
  // (gathers convert from it; with W = 1 and fp32 the model reads it).
  ParamGatherer(ShardingContext* ctx, UnitModel* model, DType param_dtype, int max_inflight,
                float* master);
  ~ParamGatherer();
  ParamGatherer(const ParamGatherer&) = delete;
  ParamGatherer& operator=(const ParamGatherer&) = delete;

  // Waits until unit u's parameters are readable (gathering them first if no
  // gather was issued).
  absl::Status Ensure(int u);
  // Issues gathers of units from, from + direction, ... (and their
  // dependencies) within the in-flight window.
  void Prefetch(int from, int direction);
  // Resharding after unit u's forward / backward (no-op without reshard).
  void ReshardAfterForward(int u);
  void ReshardAfterBackward(int u);
  // Frees every gathered buffer (no-op with W = 1).
  void ReleaseAll();
  // Resharding at the end of backward: ReleaseAll when resharding.
  void ReshardAll();

  // After the master shard of unit u was updated by the optimizer (units in
  // order from 0): gathers the first units of the next forward behind the
  // rest of the update. BeginUpdate starts a new walk.
  void BeginUpdate() { next_gather_ = 0; }
  absl::Status AfterUnitUpdated(int u);
  // Makes the rounded compute copy (W = 1, param_dtype != fp32) follow the
  // master shard.
  void RefreshComputeCopy();

  // The units' compute buffers (null for units not gathered).
  std::vector<void*> pointers() const;
  // Read by another unit: kept gathered until the step ends.
  bool kept(int u) const { return kept_[u]; }

 private:
  struct Unit;
  absl::Status Gather(int u);
  void Release(int u);

  ShardingContext* ctx_;
  UnitModel* model_;
  DType param_dtype_;
  DType compute_dtype_;  // what the model reads parameters in
  int max_inflight_;
  float* master_;
  ProcessGroup* group_;  // the shard group; null: W = 1
  std::vector<Unit> units_;
  std::vector<bool> kept_;
  void* compute_ = nullptr;  // W = 1 and param_dtype != fp32: the copy the model reads
  size_t compute_bytes_ = 0;
  int inflight_ = 0;
  int next_gather_ = 0;
};

}  // namespace anvil

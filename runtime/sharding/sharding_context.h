// ShardingContext: what the sharded engine's pieces (ParamGatherer,
// GradReducer, ShardedOptimizer) share.
//
//  - the device and the process groups the strategy maps to (strategy.h);
//  - the rank's ShardLayout (which elements of each unit it owns);
//  - the accounting: bytes of transient buffers (gathered parameters,
//    unsharded gradients, wire copies) through Alloc/Free, and the time the
//    calling thread spent blocked on collectives through Wait, charged to the
//    phase set by set_phase.
// It issues no collective itself, so it cannot change their order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "kernels/device.h"
#include "models/param_layout.h"
#include "runtime/collectives/process_group.h"
#include "runtime/sharding/shard_layout.h"

namespace anvil {

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

// The groups a strategy resolves to. Null: no such group (a single rank).
struct ShardGroups {
  ProcessGroup* world = nullptr;
  ProcessGroup* shard = nullptr;      // units are split across it (W > 1)
  ProcessGroup* replicate = nullptr;  // holds identical shards
  bool reshard = false;               // free gathered parameters after use
};

enum class CommPhase { kForward, kBackward, kStep };

class ShardingContext {
 public:
  ShardingContext(kernels::Device* device, const ShardGroups& groups, const ParamLayout& layout,
                  bool overlap);

  kernels::Device* device() const { return device_; }
  const ShardGroups& groups() const { return groups_; }
  const ShardLayout& shards() const { return shards_; }
  // false: every collective is waited for right after it is issued.
  bool overlap() const { return overlap_; }

  // Transient buffers, counted in memory().gathered_bytes.
  void* Alloc(size_t bytes);
  void Free(void* p, size_t bytes);
  // Waits for `w`, charging the blocked time to the current phase.
  absl::Status Wait(const std::shared_ptr<Work>& w);
  void set_phase(CommPhase p) { phase_ = p; }
  // Counts one issued collective of `bytes` payload.
  void CountCollective(size_t bytes) {
    ++comm_.collectives;
    comm_.bytes += static_cast<int64_t>(bytes);
  }
  void Convert(void* dst, DType dst_type, const void* src, DType src_type, size_t n);

  MemoryStats& memory() { return memory_; }
  const MemoryStats& memory() const { return memory_; }
  const CommStats& comm() const { return comm_; }

 private:
  kernels::Device* device_;
  ShardGroups groups_;
  ShardLayout shards_;
  bool overlap_;
  CommPhase phase_ = CommPhase::kForward;
  MemoryStats memory_;
  CommStats comm_;
};

}  // namespace anvil

// ShardingContext: what the sharded engine's pieces (ParamGatherer,
// GradReducer, ShardedOptimizer) share.
//
//  - the device and the process groups the strategy maps to (strategy.h);
//  - the rank's ShardLayout (which elements of each unit it owns);
//  - the accounting: bytes of transient buffers (gathered parameters,
//    unsharded gradients, wire copies) through Alloc/Free, and the time the
//    calling thread spent blocked on collectives through Wait, charged to the
//    phase set by set_phase;
//  - the ordering of collectives against compute (Issue, ComputeWaits).
//
// Stream ordering. On a synchronous device (the CPU: every op has finished
// when it returns) a collective runs on its group's own thread as soon as
// it is issued, and "compute waits for it" is the host waiting for its
// Work. On an asynchronous device (CUDA, the stream-emulating test device)
// every collective runs on one comm stream, in issue order: Issue makes the
// comm stream wait for an event recorded on the compute stream (so it reads
// what the ops issued before it wrote), then puts the collective on the comm
// stream (NCCL: on the stream itself; a CPU group: as a host function that
// runs it and waits for it), then records a `done` event there;
// ComputeWaits makes the compute stream wait for `done`. The host never
// waits inside a step.
// Freeing without waiting: Free hands a block straight back to the caching
// allocator although queued work may still use it. That is safe because the
// pieces free a buffer a collective used only after ComputeWaits on that
// collective, so every later use of the block is ordered after the old
// one: on the compute stream by that wait, on the comm stream because each
// collective waits for all compute issued before it (the Free included).
// Quiesce (the host waits for every stream) precedes destruction.
//
// It issues no collective of its own accord, so it cannot change their
// order: the comm stream runs them in the order the engine issued them,
// which is the same on every rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

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

// Test-only switches that remove one kind of event wait (EngineOptions::
// debug_skip_event_wait_for_testing), to show that a test catches the race.
enum DebugSkipWait : int {
  kSkipNoWait = 0,
  kSkipComputeWaitsComm = 1,  // compute reads collective results unordered
  kSkipCommWaitsCompute = 2,  // collectives read their inputs unordered
};

// A collective in flight (see the stream ordering above).
struct CommOp {
  std::shared_ptr<Work> work;            // synchronous device, or NCCL
  std::unique_ptr<kernels::Event> done;  // asynchronous device: after it on the comm stream
  // Asynchronous device: its result, final once `done` has completed (a
  // CPU group's is written on the comm stream; NCCL's is known at issue).
  std::shared_ptr<absl::Status> status;
};
// Issues one collective; `stream` is the comm stream's native handle (NCCL)
// or null. Runs on the comm stream's thread for CPU groups on asynchronous
// devices, so it must capture by value.
using IssueFn = std::function<std::shared_ptr<Work>(void* stream)>;

class ShardingContext {
 public:
  ShardingContext(kernels::Device* device, const ShardGroups& groups, const ParamLayout& layout,
                  bool overlap, int debug_skip_wait = kSkipNoWait);
  ~ShardingContext();
  ShardingContext(const ShardingContext&) = delete;
  ShardingContext& operator=(const ShardingContext&) = delete;

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

  // A collective on `g`, ordered after the compute stream's work so far.
  std::shared_ptr<CommOp> Issue(ProcessGroup* g, IssueFn issue);
  // Orders later compute after `op` (synchronous device: waits for it on the
  // host). Returns its error where it is known by now.
  absl::Status ComputeWaits(CommOp& op);
  // Whether `op` has finished (never blocks).
  bool Completed(const CommOp& op) const;
  // Issue, then the host waits for it: for use outside a step.
  absl::Status RunBlocking(ProcessGroup* g, IssueFn issue);
  // The first error of collectives finished on the comm stream since the
  // last call (call after a host synchronisation point).
  absl::Status CollectErrors();
  // The host waits for every stream.
  void Quiesce();
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
  int debug_skip_wait_;
  kernels::StreamId comm_stream_ = kernels::kComputeStream;  // asynchronous devices
  std::vector<std::shared_ptr<CommOp>> unchecked_;  // issued, errors not yet collected
  CommPhase phase_ = CommPhase::kForward;
  MemoryStats memory_;
  CommStats comm_;
};

}  // namespace anvil

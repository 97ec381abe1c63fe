// NcclProcessGroup: the GPU ProcessGroup, NCCL on one CUDA device.
// Invariants:
//  - Bootstrap only through the given anvil::Store: rank 0 publishes the
//    ncclUniqueId under PrefixStore(name); the communicator is created
//    non-blocking and polled, so a rank that never arrives is a
//    DeadlineExceeded after `timeout`, not a hang. Split exchanges a fresh id
//    the same way (each sub-group is its own communicator).
//  - Buffers are device memory. Each group owns one CUDA stream; a
//    collective first waits (on the device) for the options' stream, runs on
//    the group's stream, and records a completion event. Work::Wait makes
//    the options' stream wait for that event and never blocks the host;
//    IsCompleted polls the event.
//  - Collectives are enqueued in issue order under one lock, so the group's
//    stream runs them in that order on every rank.
//  - A watchdog thread polls the pending events and ncclCommGetAsyncError;
//    a collective past its timeout or an asynchronous NCCL error aborts the
//    communicator (ncclCommAbort), completes every pending Work with the
//    error, and makes every later call fail fast. Errors carry file:line.
//  - bf16/fp16 sums with Accumulation::kFloat32 are widened into an fp32
//    device scratch (stream-ordered allocation), reduced in fp32 by NCCL and
//    narrowed once; kWireDType reduces in the dtype (NCCL's own rounding).
//    Averages are a sum followed by a division kernel, as on Gloo.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/collectives/process_group.h"
#include "runtime/store/store.h"

typedef struct ncclComm* ncclComm_t;
typedef struct CUstream_st* cudaStream_t;

namespace anvil {

struct NcclOptions {
  std::shared_ptr<Store> store = nullptr;
  int rank = -1;
  int size = 0;
  // CUDA device of this rank; -1: the calling thread's current device.
  int device = -1;
  // Bootstrap deadline and default per-collective timeout.
  absl::Duration timeout = absl::Seconds(300);
  // Store namespace; unique per incarnation of the job.
  std::string name = "pg";
};

class NcclProcessGroup : public ProcessGroup {
 public:
  static absl::StatusOr<std::unique_ptr<NcclProcessGroup>> Create(const NcclOptions& options);
  // Waits for the group's stream, then destroys (or, if broken, has already
  // aborted) the communicator.
  ~NcclProcessGroup() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::string_view backend() const override { return "nccl"; }

  std::shared_ptr<Work> AllReduce(void* data, size_t count,
                                  const AllReduceOptions& options) override;
  std::shared_ptr<Work> ReduceScatter(void* data, size_t shard_count,
                                      const ReduceScatterOptions& options) override;
  std::shared_ptr<Work> AllGather(void* data, size_t shard_count,
                                  const AllGatherOptions& options) override;
  std::shared_ptr<Work> Broadcast(void* data, size_t count,
                                  const BroadcastOptions& options) override;
  // Orders the options' stream after every rank reached the barrier (a
  // one-element all-reduce); poll IsCompleted() to block the host.
  std::shared_ptr<Work> Barrier(const BarrierOptions& options) override;
  absl::StatusOr<std::unique_ptr<ProcessGroup>> Split(const SplitOptions& options) override;

  // State shared with the Works, which may outlive the group.
  struct Shared;

 private:
  NcclProcessGroup(const NcclOptions& options, int device, ncclComm_t comm, cudaStream_t stream,
                   void* barrier_buf);

  // Runs `enqueue` on the group's stream after the caller's stream, under
  // the issue lock, and returns the Work tracking it.
  using Enqueue = std::function<absl::Status(cudaStream_t)>;
  std::shared_ptr<Work> Issue(const char* what, void* caller_stream, absl::Duration timeout,
                              const Enqueue& enqueue);
  absl::Status EnsureScratch(size_t elems, cudaStream_t stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WatchdogLoop();

  const std::shared_ptr<Store> base_store_;
  const std::shared_ptr<Store> store_;
  const std::string name_;
  const int rank_;
  const int size_;
  const int device_;
  const absl::Duration timeout_;
  std::atomic<int> split_seq_{0};

  absl::Mutex mu_;  // the issue lock: enqueue order, scratch
  float* scratch_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t scratch_elems_ ABSL_GUARDED_BY(mu_) = 0;
  cudaStream_t stream_;
  void* barrier_buf_;  // one int32 on the device
  std::shared_ptr<Shared> shared_;
  std::thread watchdog_;
};

}  // namespace anvil

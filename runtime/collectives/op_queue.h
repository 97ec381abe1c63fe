// OpQueue: the executor of a CPU process group (a communication thread plus
// caller-runs), and CpuWork, the Work it hands out.
// Invariants: ops execute one at a time and in Enqueue order, each exactly
// once; each op's Work completes exactly once with the op's Status. Ops
// normally run on the queue's thread, so the caller keeps computing; but
// when a caller Waits without a deadline on an op that is at the head of
// the queue while nothing is executing, the caller runs it itself (no thread hand-off: the
// issue-then-wait pattern costs what a direct call costs). Either way only
// one op executes at a time, so op bodies may share state without locks.
// The first op that fails breaks the queue: every op still queued and every
// op enqueued later completes at once with that first error (its code,
// message prefixed), so survivors fail fast instead of waiting for timeouts
// one op at a time. The destructor runs what is queued (each op is bounded
// by its own timeout, and after a failure the rest fail fast) and joins.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/collectives/work.h"

namespace anvil {

class OpQueue;

class CpuWork : public Work {
 public:
  // A Work that is already complete (argument errors).
  static std::shared_ptr<CpuWork> Done(absl::Status status);

  absl::Status Wait(absl::Duration timeout) override;
  bool IsCompleted() override { return done_.load(std::memory_order_acquire); }

 private:
  friend class OpQueue;
  struct QueueState;

  void Complete(absl::Status status);

  std::atomic<bool> done_{false};
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  // The queue that runs this op (null for Done() works). Set before the
  // Work is handed out and never changed, so Wait reads it without a lock.
  std::shared_ptr<QueueState> queue_;
};

class OpQueue {
 public:
  using Op = std::function<absl::Status()>;

  // `name` prefixes the errors of ops failed because the queue is broken.
  explicit OpQueue(std::string name);
  ~OpQueue();
  OpQueue(const OpQueue&) = delete;
  OpQueue& operator=(const OpQueue&) = delete;

  std::shared_ptr<Work> Enqueue(Op op);

  // The first error, or OK while the queue is healthy.
  absl::Status broken() const;

 private:
  void Loop();

  std::shared_ptr<CpuWork::QueueState> state_;
  std::thread thread_;
};

}  // namespace anvil

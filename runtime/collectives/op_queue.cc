// OpQueue / CpuWork implementation. The queue state lives in a shared block
// owned by the queue and by every pending Work, so a Work can claim its op
// for caller-runs execution without a pointer back into the process group.
#include "runtime/collectives/op_queue.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace anvil {

struct CpuWork::QueueState {
  struct Item {
    OpQueue::Op op;
    std::shared_ptr<CpuWork> work;
  };

  explicit QueueState(std::string n) : name(std::move(n)) {}

  absl::Status BrokenErrorLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return absl::Status(first_error.code(),
                        absl::StrCat("process group '", name,
                                     "' is broken by an earlier failure: ", first_error.message()));
  }

  // Wakes the queue's thread after a change it may act on. Eventcount:
  // the thread reads `seq` before looking at the state and sleeps only
  // while `seq` is unchanged, so no change is ever missed.
  void Kick() {
    seq.fetch_add(1, std::memory_order_release);
    seq.notify_one();
  }

  // Runs one claimed item (outside the lock) and releases the executor.
  // The group is marked broken before the failed Work completes, so a
  // caller reacting to that error already finds the group broken.
  void Execute(Item item) {
    absl::Status st = item.op();
    bool more;
    {
      absl::MutexLock lock(&mu);
      if (!st.ok() && first_error.ok()) first_error = st;
      executing = false;
      busy.store(false, std::memory_order_release);
      more = !queue.empty() || stop;
    }
    item.work->Complete(std::move(st));
    if (more) Kick();
  }

  // Pops the head for execution; fails it at once if the queue is broken.
  // Returns false when the head was failed instead (nothing to execute).
  bool ClaimHeadLocked(Item* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    *out = std::move(queue.front());
    queue.pop_front();
    pending.fetch_sub(1, std::memory_order_release);
    if (!first_error.ok()) {
      out->work->Complete(BrokenErrorLocked());
      return false;
    }
    executing = true;
    busy.store(true, std::memory_order_release);
    return true;
  }

  const std::string name;
  mutable absl::Mutex mu;
  std::deque<Item> queue ABSL_GUARDED_BY(mu);
  bool executing ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
  absl::Status first_error ABSL_GUARDED_BY(mu);
  // Lock-free mirrors of queue.size() and `executing`, written under `mu`,
  // read by the thread to decide whether a wake-up is worth the lock (a
  // caller that already runs the op inline must not be slowed by it).
  std::atomic<uint32_t> pending{0};
  std::atomic<bool> busy{false};
  std::atomic<bool> stopping{false};
  std::atomic<uint32_t> seq{0};
  // steady_clock nanoseconds of the latest Enqueue (see kCallerGrace).
  std::atomic<int64_t> last_enqueue_ns{0};
};

namespace {

// Spin this long before sleeping: a collective finishing within a few
// microseconds then costs no futex wake-up. Short, because on a busy host
// spinning steals the CPU that the communication threads need.
constexpr auto kSpin = std::chrono::microseconds(5);

// A caller that issues a collective and then waits for it runs it itself
// (caller-runs). The thread, woken by the same Enqueue, leaves a freshly
// enqueued op to such a caller for this long before claiming it: otherwise
// the two race, and when the thread wins the caller sleeps and needs a
// wake-up (tens of microseconds on a busy host). A collective that is not
// waited for starts at most this much later, which is nothing against the
// computation it overlaps.
constexpr int64_t kCallerGraceNs = 20'000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

}  // namespace

std::shared_ptr<CpuWork> CpuWork::Done(absl::Status status) {
  auto work = std::make_shared<CpuWork>();
  work->Complete(std::move(status));
  return work;
}

void CpuWork::Complete(absl::Status status) {
  absl::MutexLock lock(&mu_);
  status_ = std::move(status);
  finished_ = true;
  done_.store(true, std::memory_order_release);
}

absl::Status CpuWork::Wait(absl::Duration timeout) {
  // Caller-runs: if this op is next and the executor is idle, run it here.
  // Only for unbounded waits: a bounded Wait must return at its deadline,
  // which an op running on this thread could not honour.
  std::shared_ptr<QueueState> q = timeout == absl::InfiniteDuration() ? queue_ : nullptr;
  if (q != nullptr && !IsCompleted()) {
    QueueState::Item item;
    bool run = false;
    {
      absl::MutexLock lock(&q->mu);
      if (!q->executing && !q->queue.empty() && q->queue.front().work.get() == this) {
        run = q->ClaimHeadLocked(&item);
      }
    }
    if (run) q->Execute(std::move(item));
  }
  const auto spin_until = std::chrono::steady_clock::now() + kSpin;
  while (!IsCompleted() && std::chrono::steady_clock::now() < spin_until) CpuRelax();
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&finished_), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("Work::Wait: collective not finished after ", absl::FormatDuration(timeout),
                     " (it continues; its own timeout bounds it)"));
  }
  return status_;
}

OpQueue::OpQueue(std::string name)
    : state_(std::make_shared<CpuWork::QueueState>(std::move(name))) {
  thread_ = std::thread([this] { Loop(); });
}

OpQueue::~OpQueue() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stop = true;
    state_->stopping.store(true, std::memory_order_release);
  }
  state_->Kick();
  thread_.join();
  // A caller may still be running an op inline; its body belongs to the
  // owner of this queue, which is being destroyed.
  absl::MutexLock lock(&state_->mu);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) { return !state_->executing; };
  state_->mu.Await(absl::Condition(&idle));
}

absl::Status OpQueue::broken() const {
  absl::MutexLock lock(&state_->mu);
  return state_->first_error;
}

std::shared_ptr<Work> OpQueue::Enqueue(Op op) {
  auto work = std::make_shared<CpuWork>();
  {
    absl::MutexLock lock(&state_->mu);
    if (!state_->first_error.ok()) {
      work->Complete(state_->BrokenErrorLocked());
      return work;
    }
    work->queue_ = state_;
    state_->queue.push_back({std::move(op), work});
    state_->pending.fetch_add(1, std::memory_order_release);
    state_->last_enqueue_ns.store(NowNs(), std::memory_order_release);
  }
  state_->Kick();
  return work;
}

void OpQueue::Loop() {
  CpuWork::QueueState& s = *state_;
  while (true) {
    const uint32_t seen = s.seq.load(std::memory_order_acquire);
    // Nothing to claim (or a caller is running an op): skip the lock.
    if (s.pending.load(std::memory_order_acquire) == 0 || s.busy.load(std::memory_order_acquire)) {
      if (s.stopping.load(std::memory_order_acquire)) {
        absl::MutexLock lock(&s.mu);
        if (s.queue.empty() && !s.executing) return;
      }
    } else {
      // Give a waiting caller the first chance at a fresh op.
      const int64_t until = s.last_enqueue_ns.load(std::memory_order_acquire) + kCallerGraceNs;
      while (NowNs() < until && !s.busy.load(std::memory_order_acquire) &&
             !s.stopping.load(std::memory_order_acquire)) {
        CpuRelax();
      }
      CpuWork::QueueState::Item item;
      bool run = false;
      {
        absl::MutexLock lock(&s.mu);
        if (!s.executing && !s.queue.empty()) run = s.ClaimHeadLocked(&item);
      }
      if (run) s.Execute(std::move(item));
      continue;
    }
    s.seq.wait(seen, std::memory_order_acquire);
  }
}

}  // namespace anvil

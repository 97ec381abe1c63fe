// KvTable: the store service's in-memory key-value state for one run, with
// waiters that are answered when their keys appear (no thread per waiter).
// Invariants: all mutations are atomic under one mutex; a waiter's callback
// runs exactly once (values, DEADLINE_EXCEEDED naming the missing keys, or
// the status given to FailAll) and never with the table lock held; after
// CancelWait(id) returns, its callback has run or never will.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "launcher/server/deadline_timer.h"

namespace anvil {

class KvTable {
 public:
  using WaitId = uint64_t;
  // Receives the values of the awaited keys, in request order.
  using WaitCallback = std::function<void(absl::StatusOr<std::vector<std::string>>)>;

  // `timer` must outlive the table. `name` appears in error messages.
  KvTable(DeadlineTimer* timer, std::string name);
  ~KvTable();

  void Set(const std::string& key, std::string value);
  // INVALID_ARGUMENT when the key holds a non-integer.
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta);
  // Returns the value held after the call (a missing key reads as "").
  std::string CompareSet(const std::string& key, const std::string& expected,
                         std::string desired);
  bool Delete(const std::string& key);
  void MultiSet(absl::Span<const std::string> keys, absl::Span<const std::string> values);

  // Answers `done` when every key exists (inline, before returning, if they
  // already do) or `timeout` from now. Returns an id for CancelWait (0 when
  // answered inline).
  WaitId WaitFor(std::vector<std::string> keys, absl::Duration timeout, WaitCallback done);
  // Drops a waiter without calling it (the caller went away).
  void CancelWait(WaitId id);
  // Answers every waiter with `status` (shutdown).
  void FailAll(const absl::Status& status);
  // Forgets every key (a new job reuses the run id); waiters keep waiting.
  void Clear();

  size_t num_keys();
  size_t num_waiters();

 private:
  struct Waiter {
    std::vector<std::string> keys;
    WaitCallback done;
    absl::Duration timeout;
    DeadlineTimer::TimerId timer = 0;
  };
  // Moves waiters of `key` whose keys all exist into `ready`.
  void CollectReady(const std::string& key,
                    std::vector<std::pair<WaitCallback, std::vector<std::string>>>& ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveWaiter(WaitId id, Waiter& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnDeadline(WaitId id);

  DeadlineTimer* timer_;
  const std::string name_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<WaitId, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<WaitId>> by_key_ ABSL_GUARDED_BY(mu_);
  WaitId next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace anvil

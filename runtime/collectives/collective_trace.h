// CollectiveTrace: what one process group has issued, kept for diagnosis.
// A collective that times out is nearly always one of two things: a rank
// that never arrived (hung outside any collective), or ranks that issued
// different sequences (one ran an extra all-reduce). The trace turns both
// into a statement instead of a guess: each group remembers its last
// kDepth collectives (sequence number, op, bytes); on a failure every rank
// prints a fingerprint of them, and the ranks that timed out compare their
// traces through the group's store and name the first difference
// (CompareTraces).
// It also feeds the process-wide CurrentCollective(), which the trainer's
// progress reporter publishes to the launcher's hang watchdog.
// Invariants: sequence numbers are per group and increase in issue order
// (the order every rank must share; the Gloo group passes its op tag, so
// "#9" here is "op #9" in its errors); Enter/Exit are called by the group's
// single executor; the other functions may run on any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace anvil {

struct CollectiveEntry {
  uint64_t seq = 0;  // per group, in issue order
  std::string op;    // "allreduce", "allgather", ...
  uint64_t bytes = 0;
  bool operator==(const CollectiveEntry&) const = default;
};

class CollectiveTrace {
 public:
  static constexpr size_t kDepth = 32;

  explicit CollectiveTrace(std::string group) : group_(std::move(group)) {}

  // `op` must outlive the process (a string literal).
  void Enter(uint64_t seq, const char* op, uint64_t bytes);
  void Exit();

  std::vector<CollectiveEntry> Recent() const;
  // "collectives of group 'pg' on this rank: 12 issued, fingerprint
  // 9f3a12c4e1d07b55 of #0-#11, last: #9 allreduce 4.0 MB, ..."
  std::string Describe() const;

 private:
  const std::string group_;
  mutable absl::Mutex mu_;
  std::deque<CollectiveEntry> recent_ ABSL_GUARDED_BY(mu_);
  uint64_t issued_ ABSL_GUARDED_BY(mu_) = 0;
};

// FNV-1a over (op, bytes) of the entries, in order.
uint64_t TraceFingerprint(const std::vector<CollectiveEntry>& entries);
// "seq:op:bytes,seq:op:bytes" and back (malformed pieces are skipped).
std::string EncodeTrace(const std::vector<CollectiveEntry>& entries);
std::vector<CollectiveEntry> DecodeTrace(absl::string_view text);
// "#12 allreduce 4.0 MB"
std::string FormatEntry(const CollectiveEntry& e);

// One sentence about the ranks' traces of one group: the first sequence
// number at which two ranks issued different collectives ("mismatch: #12
// is allreduce 4.0 MB on rank 0 but broadcast 1.0 KB on rank 1"), else who
// is behind, else that they agree. Ranks of [0, world) missing from
// `by_rank` are named as not having reported.
std::string CompareTraces(const std::map<int, std::vector<CollectiveEntry>>& by_rank, int world);

// The collective this process is in, or the last it was in, over all its
// groups; `issued` counts every collective any group of the process began.
struct CollectiveProgress {
  uint64_t issued = 0;
  bool inside = false;
  std::string group;
  std::string op;
  uint64_t seq = 0;
  uint64_t bytes = 0;
};
CollectiveProgress CurrentCollective();

}  // namespace anvil

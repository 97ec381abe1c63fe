// Bucketer: DDP-style gradient buckets for the all-reduce path (W = 1 with
// replicas: NO_SHARD, or HYBRID_SHARD with one rank per node).
//
// Buckets are runs of consecutive units taken in backward order (last unit
// first), because that is the order in which gradients become final. The
// first bucket closes at first_bucket_bytes, so communication starts early in
// backward; later ones at bucket_bytes. A bucket always holds at least one
// unit, and closes once it reaches its limit (it may exceed it by one unit).
// Units of a bucket are contiguous in the local shard, so a bucket is one
// flat range [offset, offset + numel) of it.
//
// Invariants: every unit is in exactly one bucket; the plan depends only on
// the layout and the two sizes, so every rank has the same buckets and, by
// marking units ready in backward order, completes them in the same order:
// all-reduces issued as buckets fill match up across ranks.
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/sharding/shard_layout.h"

namespace anvil {

struct Bucket {
  int lo = 0, hi = 0;  // units [lo, hi]
  size_t offset = 0;   // elements of the local shard
  size_t numel = 0;
};

class Bucketer {
 public:
  Bucketer(const ShardLayout& shards, size_t first_bucket_bytes, size_t bucket_bytes);

  // In issue order (the first holds the last units).
  const std::vector<Bucket>& buckets() const { return buckets_; }
  int bucket_of(int unit) const { return unit_bucket_[unit]; }

  // Starts a backward pass: no unit is ready.
  void Begin();
  // Unit `unit`'s gradient is final. Returns the bucket this completes, or -1.
  int MarkReady(int unit);

 private:
  std::vector<Bucket> buckets_;
  std::vector<int> unit_bucket_;
  std::vector<int> remaining_;  // units of each bucket not yet ready
};

}  // namespace anvil

#include "runtime/sharding/bucketer.h"

namespace anvil {

Bucketer::Bucketer(const ShardLayout& shards, size_t first_bucket_bytes, size_t bucket_bytes) {
  const int n = static_cast<int>(shards.units().size());
  size_t limit = first_bucket_bytes;
  for (int u = n - 1; u >= 0;) {
    Bucket b;
    b.hi = u;
    size_t bytes = 0;
    while (u >= 0 && (bytes == 0 || bytes < limit)) {
      bytes += shards.unit(u).numel * sizeof(float);
      --u;
    }
    b.lo = u + 1;
    b.offset = shards.unit(b.lo).shard_offset;
    b.numel = bytes / sizeof(float);
    buckets_.push_back(b);
    limit = bucket_bytes;
  }
  unit_bucket_.assign(n, -1);
  for (size_t i = 0; i < buckets_.size(); ++i) {
    for (int u = buckets_[i].lo; u <= buckets_[i].hi; ++u) unit_bucket_[u] = static_cast<int>(i);
  }
  Begin();
}

void Bucketer::Begin() {
  remaining_.resize(buckets_.size());
  for (size_t i = 0; i < buckets_.size(); ++i) remaining_[i] = buckets_[i].hi - buckets_[i].lo + 1;
}

int Bucketer::MarkReady(int unit) {
  const int b = unit_bucket_[unit];
  return --remaining_[b] == 0 ? b : -1;
}

}  // namespace anvil

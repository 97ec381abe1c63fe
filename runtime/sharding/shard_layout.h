// ShardLayout: how each unit's flat range is padded and split across the
// ranks of a shard group.
//
// Unit u holds numel_u elements at offset_u of the model's flat layout. It is
// padded to padded_u = ceil(numel_u / W) * W so that all-gather and
// reduce-scatter work in place on one buffer of padded_u elements, and rank r
// owns elements [r * shard_u, (r + 1) * shard_u) of it (shard_u = padded_u / W).
// The rank's shards of all units are concatenated in unit order into the
// local shard buffers (master params, grads, m, v) at shard_offset_u. Padding
// elements beyond numel_u are kept at zero and never updated.
#pragma once

#include <cstddef>
#include <vector>

#include "models/param_layout.h"

namespace anvil {

struct UnitShard {
  size_t numel = 0;         // real elements of the unit
  size_t padded = 0;        // multiple of the shard group size
  size_t shard = 0;         // padded / W
  size_t shard_offset = 0;  // offset of this rank's shard in the local shard buffers
  size_t global_offset = 0; // offset of the unit in the model's flat layout
  // This rank's slice of the unit: [begin, end) in unit coordinates, clipped
  // to the real elements (may be empty for trailing ranks of tiny units).
  size_t begin = 0;
  size_t end = 0;
};

class ShardLayout {
 public:
  ShardLayout(const ParamLayout& layout, int world, int rank);

  const std::vector<UnitShard>& units() const { return units_; }
  const UnitShard& unit(int u) const { return units_[u]; }
  size_t local_numel() const { return local_numel_; }  // sum of shard sizes
  size_t max_padded() const { return max_padded_; }
  int world() const { return world_; }
  int rank() const { return rank_; }

 private:
  std::vector<UnitShard> units_;
  size_t local_numel_ = 0;
  size_t max_padded_ = 0;
  int world_;
  int rank_;
};

}  // namespace anvil

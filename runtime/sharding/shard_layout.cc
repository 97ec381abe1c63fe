#include "runtime/sharding/shard_layout.h"

#include <algorithm>

namespace anvil {

ShardLayout::ShardLayout(const ParamLayout& layout, int world, int rank)
    : world_(world), rank_(rank) {
  const size_t W = static_cast<size_t>(world);
  for (const UnitInfo& info : layout.units()) {
    UnitShard u;
    u.numel = info.numel;
    u.padded = (info.numel + W - 1) / W * W;
    u.shard = u.padded / W;
    u.shard_offset = local_numel_;
    u.global_offset = info.offset;
    u.begin = std::min(u.numel, static_cast<size_t>(rank) * u.shard);
    u.end = std::min(u.numel, u.begin + u.shard);
    local_numel_ += u.shard;
    max_padded_ = std::max(max_padded_, u.padded);
    units_.push_back(u);
  }
}

}  // namespace anvil

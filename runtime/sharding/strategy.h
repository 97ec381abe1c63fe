// Sharding strategies and the mixed-precision policy, as the flag spells them.
//
// Every strategy is the same machine with three knobs (see ShardedEngine):
//   shard group     the ranks a unit's flat buffer is split across;
//   replicate group the ranks holding identical shards (gradients all-reduced);
//   reshard         whether gathered parameters are freed after forward.
//                 shard group    replicate group   reshard after forward
//  NO_SHARD       {self}         world             -
//  SHARD_GRAD_OP  world          {self}            no  (ZeRO-2)
//  FULL_SHARD     world          {self}            yes (ZeRO-3)
//  HYBRID_SHARD   node-local     cross-node        yes
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace anvil {

enum class ShardingStrategy { kNoShard, kShardGradOp, kFullShard, kHybridShard };

absl::StatusOr<ShardingStrategy> ParseShardingStrategy(std::string_view s);
std::string_view ShardingStrategyName(ShardingStrategy s);
// "fp32" | "bf16" | "fp16"
absl::StatusOr<DType> ParseFloatDType(std::string_view s);

}  // namespace anvil

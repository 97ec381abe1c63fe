#include "runtime/sharding/strategy.h"

#include "absl/strings/str_cat.h"

namespace anvil {

absl::StatusOr<ShardingStrategy> ParseShardingStrategy(std::string_view s) {
  if (s == "NO_SHARD") return ShardingStrategy::kNoShard;
  if (s == "SHARD_GRAD_OP") return ShardingStrategy::kShardGradOp;
  if (s == "FULL_SHARD") return ShardingStrategy::kFullShard;
  if (s == "HYBRID_SHARD") return ShardingStrategy::kHybridShard;
  return absl::InvalidArgumentError(absl::StrCat(
      "--sharding must be NO_SHARD, SHARD_GRAD_OP, FULL_SHARD or HYBRID_SHARD, got '", std::string(s), "'"));
}

std::string_view ShardingStrategyName(ShardingStrategy s) {
  switch (s) {
    case ShardingStrategy::kNoShard: return "NO_SHARD";
    case ShardingStrategy::kShardGradOp: return "SHARD_GRAD_OP";
    case ShardingStrategy::kFullShard: return "FULL_SHARD";
    case ShardingStrategy::kHybridShard: return "HYBRID_SHARD";
  }
  return "?";
}

absl::StatusOr<DType> ParseFloatDType(std::string_view s) {
  if (s == "fp32") return DType::kF32;
  if (s == "bf16") return DType::kBF16;
  if (s == "fp16") return DType::kF16;
  return absl::InvalidArgumentError(absl::StrCat("dtype must be fp32, bf16 or fp16, got '", std::string(s), "'"));
}

}  // namespace anvil

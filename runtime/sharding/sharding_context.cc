#include "runtime/sharding/sharding_context.h"

#include <algorithm>
#include <chrono>

#include "kernels/ops/convert.h"

namespace anvil {

ShardingContext::ShardingContext(kernels::Device* device, const ShardGroups& groups,
                                 const ParamLayout& layout, bool overlap)
    : device_(device),
      groups_(groups),
      shards_(layout, groups.shard != nullptr ? groups.shard->size() : 1,
              groups.shard != nullptr ? groups.shard->rank() : 0),
      overlap_(overlap) {}

void* ShardingContext::Alloc(size_t bytes) {
  memory_.gathered_bytes += bytes;
  memory_.gathered_peak_bytes = std::max(memory_.gathered_peak_bytes, memory_.gathered_bytes);
  return device_->Alloc(bytes);
}

void ShardingContext::Free(void* p, size_t bytes) {
  memory_.gathered_bytes -= bytes;
  device_->Free(p);
}

absl::Status ShardingContext::Wait(const std::shared_ptr<Work>& w) {
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s = w->Wait();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  comm_.exposed_wait_s += waited;
  switch (phase_) {
    case CommPhase::kForward:
      comm_.exposed_forward_s += waited;
      break;
    case CommPhase::kBackward:
      comm_.exposed_backward_s += waited;
      break;
    case CommPhase::kStep:
      comm_.exposed_step_s += waited;
      break;
  }
  return s;
}

void ShardingContext::Convert(void* dst, DType dst_type, const void* src, DType src_type,
                              size_t n) {
  kernels::Convert(*device_, kernels::Flat(dst, dst_type, n), kernels::Flat(src, src_type, n));
}

}  // namespace anvil

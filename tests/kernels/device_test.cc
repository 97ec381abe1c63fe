// The Device and op registry: missing ops and dtypes are reported by name at
// construction time (RequireOps), every family is registered on the CPU,
// and the caching allocator reuses freed blocks (a steady-state step never
// reaches the system allocator).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/caching_allocator.h"
#include "kernels/device.h"
#include "kernels/op_registry.h"

namespace anvil::kernels {
namespace {

TEST(OpRegistry, RequireOpsNamesWhatIsMissing) {
  auto d = MakeCpuDevice(1);
  EXPECT_TRUE(RequireOps(*d, {{"linear.forward", DType::kBF16}, {"norm.layernorm_forward", DType::kF32}}).ok());
  const absl::Status missing = RequireOps(*d, {{"linear.forward", DType::kF32}, {"conv.forward", DType::kF32}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), "the cpu device has no op conv.forward");
  const absl::Status dtype = RequireOps(*d, {{"optim.adamw", DType::kBF16}});
  ASSERT_FALSE(dtype.ok());
  EXPECT_EQ(dtype.message(), "the cpu device has no BF16 version of op optim.adamw");
}

TEST(OpRegistry, EveryFamilyIsRegisteredOnTheCpu) {
  auto d = MakeCpuDevice(1);
  const auto ops = RegisteredOps(DeviceKind::kCpu);
  for (const char* op : {"convert.convert", "elementwise.add", "elementwise.accumulate",
                         "elementwise.scale", "activation.gelu_forward", "activation.gelu_backward",
                         "norm.layernorm_forward", "norm.layernorm_backward", "linear.forward",
                         "linear.backward", "attention.forward", "attention.backward",
                         "embedding.forward", "embedding.backward", "loss.softmax_xent_forward",
                         "loss.softmax_xent_backward", "optim.adamw", "optim.squared_norm",
                         "optim.has_nonfinite", "norm.rmsnorm_forward", "norm.rmsnorm_backward",
                         "embedding.rope_forward", "embedding.rope_backward",
                         "activation.swiglu_forward", "activation.swiglu_backward"}) {
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
  }
}

TEST(CachingAllocator, ReusesFreedBlocksAndRoundsSizes) {
  int raw = 0;
  CachingAllocator a([&](size_t n) { ++raw; return ::operator new(n); },
                     [](void* p) { ::operator delete(p); }, "test");
  void* p = a.Alloc(3000);
  a.Free(p);
  void* q = a.Alloc(2500);  // same 4 KiB bin: the freed block comes back
  EXPECT_EQ(p, q);
  EXPECT_EQ(raw, 1);
  void* r = a.Alloc(3000);  // q is live: a new block
  EXPECT_NE(r, q);
  EXPECT_EQ(raw, 2);
  EXPECT_EQ(a.stats().in_use_bytes, 2u * 4096);
  a.Free(q);
  a.Free(r);
  EXPECT_EQ(a.stats().cached_bytes, 2u * 4096);
  EXPECT_EQ(a.stats().peak_in_use_bytes, 2u * 4096);
  a.EmptyCache();
  EXPECT_EQ(a.stats().cached_bytes, 0u);
  // Above 1 MiB: steps of 1/8 of the next power of two (4 bins per octave).
  EXPECT_EQ(CachingAllocator::RoundSize((1u << 20) + 1), (1u << 20) + (1u << 18));
  EXPECT_EQ(CachingAllocator::RoundSize(3u << 20), 3u << 20);
  EXPECT_EQ(CachingAllocator::RoundSize(1), 512u);
}

TEST(CpuDevice, StepLikeAllocationsReachTheSystemOnce) {
  auto d = MakeCpuDevice(1);
  for (int step = 0; step < 5; ++step) {
    void* a = d->Alloc(1 << 20);
    void* b = d->Alloc(3 << 20);
    d->Free(a);
    d->Free(b);
  }
  EXPECT_EQ(d->memory_stats().raw_allocs, 2u);
  EXPECT_EQ(d->memory_stats().allocs, 10u);
  EXPECT_NE(d->Describe().find("threads"), std::string::npos);
}

}  // namespace
}  // namespace anvil::kernels

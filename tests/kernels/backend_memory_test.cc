// CPU device memory: alignment, Memset and copies on buffers below and above
// the multithreading threshold, odd byte counts.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/device.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {

class BackendMemoryTest : public ::testing::TestWithParam<int> {};

TEST_P(BackendMemoryTest, AllocIsAlignedAndMemsetCopyWork) {
  auto be = MakeCpuDevice(GetParam());
  EXPECT_EQ(be->kind(), DeviceKind::kCpu);
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{1000}, size_t{(1 << 20) + 13}}) {
    auto* p = static_cast<uint8_t*>(be->Alloc(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    be->Memset(p, 0xab, bytes);
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(p[i], 0xab) << i;
    std::vector<uint8_t> host(bytes);
    for (size_t i = 0; i < bytes; ++i) host[i] = static_cast<uint8_t>(i * 31 + 7);
    be->CopyFromHost(p, host.data(), bytes);
    std::vector<uint8_t> back(bytes, 0);
    be->CopyToHost(back.data(), p, bytes);
    be->Synchronize();
    EXPECT_EQ(back, host);
    be->Free(p);
  }
}

ANVIL_THREADS_PARAMS(BackendMemoryTest);

}  // namespace
}  // namespace anvil::kernels

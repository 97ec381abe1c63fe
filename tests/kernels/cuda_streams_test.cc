// The CUDA device's streams (NewStream, per-stream events, HostFunc) and
// optim.reduce_to against the CPU device. Skips without a GPU.
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/ops/optim.h"
#include "kernels/tensor.h"

namespace anvil::kernels {
namespace {

class CudaStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
    gpu_ = MakeCudaDevice(0);
    cpu_ = MakeCpuDevice(1);
  }
  std::unique_ptr<Device> gpu_, cpu_;
};

TEST_F(CudaStreamsTest, EventsOrderStreamsAndHostFunctions) {
  Device& d = *gpu_;
  const StreamId comm = d.NewStream();
  ASSERT_NE(comm, kComputeStream);
  EXPECT_NE(d.native_stream(comm), nullptr);
  EXPECT_NE(d.native_stream(comm), d.native_stream(kComputeStream));
  const size_t bytes = size_t{256} << 20;
  void* big = d.Alloc(bytes);
  d.Memset(big, 1, bytes);  // long enough to still run when the host goes on
  std::unique_ptr<Event> produced = d.RecordEvent(kComputeStream);
  d.WaitEvent(comm, *produced);
  std::atomic<bool> ran{false};
  d.HostFunc(comm, [&ran] { ran = true; });  // no CUDA calls in here
  std::unique_ptr<Event> after = d.RecordEvent(comm);
  after->Wait();
  EXPECT_TRUE(ran.load());
  // `after` follows the wait on `produced` in the comm stream's order.
  EXPECT_TRUE(produced->Done()) << "the comm stream passed an event it waited for";
  d.Synchronize();
  d.Free(big);
}

TEST_F(CudaStreamsTest, ReduceToMatchesCpu) {
  const size_t n = 1000003;
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.001f * static_cast<float>(i)) * 3.0f;
  float* xd = static_cast<float*>(gpu_->Alloc(n * sizeof(float)));
  float* od = static_cast<float*>(gpu_->Alloc(sizeof(float)));
  gpu_->CopyFromHost(xd, x.data(), n * sizeof(float));
  for (ReduceToKind kind : {ReduceToKind::kSum, ReduceToKind::kSquares, ReduceToKind::kNonFinite}) {
    const ReduceToParams p{kind, 0.5, false};
    float want = 0, got = 0;
    ReduceTo(*cpu_, Flat(&want, 1), Flat(x.data(), n), p);
    ReduceTo(*gpu_, Flat(od, 1), Flat(xd, n), p);
    gpu_->CopyToHost(&got, od, sizeof(float));
    EXPECT_NEAR(got, want, 1e-6 * std::max(1.0f, std::fabs(want))) << static_cast<int>(kind);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  gpu_->CopyFromHost(xd + n / 2, &nan, sizeof(float));
  float flag = 0;
  ReduceTo(*gpu_, Flat(od, 1), Flat(xd, n), {ReduceToKind::kNonFinite, 1.0, false});
  gpu_->CopyToHost(&flag, od, sizeof(float));
  EXPECT_EQ(flag, 1.0f);
  gpu_->Free(xd);
  gpu_->Free(od);
}

}  // namespace
}  // namespace anvil::kernels

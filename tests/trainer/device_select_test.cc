// --device cpu|cuda|auto (runtime/trainer/device_select.h): the choice for
// every probe outcome, `train --device cuda` on a machine whose CUDA cannot
// be used (one line, exit 2: runs everywhere, because the child sees no GPU
// through CUDA_VISIBLE_DEVICES=""), and models on a device of kind cuda
// failing at construction with one line for an op the device lacks. The
// GpuModels tests build every model on a real GPU and skip without one.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/model_registry.h"
#include "runtime/config/schema.h"
#include "runtime/data/token_shard.h"
#include "runtime/trainer/device_select.h"
#include "tests/common/process.h"

namespace anvil {
namespace {

using kernels::DeviceKind;

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

CudaProbe Gpus(int n) { return CudaProbe{true, n, ""}; }
CudaProbe NoCuda(const std::string& why) { return CudaProbe{true, 0, why}; }

TEST(ChooseDevice, CpuIsAlwaysCpu) {
  for (const CudaProbe& p : {Gpus(0), Gpus(8), NoCuda("no driver")}) {
    auto c = ChooseDevice("cpu", 3, 8, p);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->kind, DeviceKind::kCpu);
    EXPECT_EQ(c->name, "cpu");
  }
}

TEST(ChooseDevice, AutoTakesGpuLocalRankOnlyWhenEveryLocalRankHasOne) {
  auto c = ChooseDevice("auto", 3, 8, Gpus(8));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, DeviceKind::kCuda);
  EXPECT_EQ(c->ordinal, 3);
  EXPECT_EQ(c->name, "cuda:3");
  c = ChooseDevice("auto", 0, 1, Gpus(1));  // a lone process: GPU 0
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->name, "cuda:0");
  // 2 workers on 1 GPU: both stay on the CPU (ranks must agree on the kind).
  for (int r : {0, 1}) {
    c = ChooseDevice("auto", r, 2, Gpus(1));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->kind, DeviceKind::kCpu) << r;
  }
  c = ChooseDevice("auto", 0, 1, NoCuda("no CUDA driver"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, DeviceKind::kCpu);
}

TEST(ChooseDevice, CudaWithoutAUsableGpuIsOneLineNamingTheProblem) {
  auto c = ChooseDevice("cuda", 0, 1, NoCuda("no CUDA driver (libcuda.so.1) is installed"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(c.status().message(), "--device cuda: no CUDA driver (libcuda.so.1) is installed");
  c = ChooseDevice("cuda", 2, 4, Gpus(2));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string m(c.status().message());
  EXPECT_NE(m.find("LOCAL_RANK 2 needs GPU 2 but this process sees 2 GPU(s)"), std::string::npos)
      << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
  c = ChooseDevice("cuda", 1, 2, Gpus(2));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->name, "cuda:1");
}

TEST(ChooseDevice, UnknownValueIsBadInput) {
  auto c = ChooseDevice("gpu", 0, 1, Gpus(1));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(), "--device must be cpu, cuda or auto, got 'gpu'");
}

TEST(ProbeCuda, ReportsAProblemExactlyWhenNoGpuIsUsable) {
  const CudaProbe p = ProbeCuda();
  EXPECT_EQ(p.count == 0, !p.problem.empty()) << p.count << " " << p.problem;
  EXPECT_EQ(p.problem.find('\n'), std::string::npos);
  // A second probe after a failed one answers the same (the sticky error is cleared).
  const CudaProbe q = ProbeCuda();
  EXPECT_EQ(q.count, p.count);
  EXPECT_EQ(q.problem, p.problem);
}

class TrainDeviceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("anvil_devcli_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::vector<uint32_t> t(4000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 31 + i / 7) % 200);
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::string> Args(const std::string& device) const {
    return {"--device=" + device, "--train_pattern=" + (dir_ / "train_*.bin").string(),
            "--val_pattern=" + (dir_ / "train_*.bin").string(),
            "--n_layer=1", "--n_head=2", "--n_embd=16", "--max_seq_len=16", "--seq_len=16",
            "--batch_size=2", "--steps=2", "--threads=1", "--eval_every=0", "--log_every=1"};
  }
  testing::ProcessResult Run(const std::string& device,
                             std::map<std::string, std::string> env = {}) const {
    // ANVIL_TRAIN_BIN in the environment: a packed copy (scripts/gpu_check.sh).
    const char* bin = std::getenv("ANVIL_TRAIN_BIN");
    testing::Process p(bin != nullptr ? bin : ANVIL_TRAIN_BIN, Args(device),
                       testing::ProcessOptions(std::move(env)));
    return testing::RunAll({&p}, 60)[0];
  }
  std::filesystem::path dir_;
};

// The check: `train --device cuda` where no GPU can be used.
TEST_F(TrainDeviceCliTest, CudaWithoutAGpuExitsTwoWithOneLine) {
  if (ProbeCuda().count > 0) GTEST_SKIP() << "this machine has a usable GPU";
  const testing::ProcessResult r = Run("cuda");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("train: --device cuda: ", 0), 0u) << r.err;
  EXPECT_EQ(r.out, "");
}

// The same where a GPU exists too: the child is shown none.
TEST_F(TrainDeviceCliTest, CudaWithNoVisibleGpuExitsTwoWithOneLine) {
  const testing::ProcessResult r = Run("cuda", {{"CUDA_VISIBLE_DEVICES", ""}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("train: --device cuda: ", 0), 0u) << r.err;
}

// Under the launcher's environment the choice is made before any connection:
// a worker whose LOCAL_RANK has no GPU fails at once (no store is contacted).
TEST_F(TrainDeviceCliTest, WorkerWithoutItsGpuFailsBeforeConnecting) {
  const testing::ProcessResult r =
      Run("cuda", {{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"LOCAL_RANK", "1"},
                   {"LOCAL_WORLD_SIZE", "2"}, {"ANVIL_STORE_ADDR", "127.0.0.1:1"},
                   {"CUDA_VISIBLE_DEVICES", ""}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("train: --device cuda: ", 0), 0u) << r.err;
}

TEST_F(TrainDeviceCliTest, CpuAndAutoWithoutAGpuTrainOnTheCpu) {
  for (const char* d : {"cpu", "auto"}) {
    const testing::ProcessResult r = Run(d, {{"CUDA_VISIBLE_DEVICES", ""}});
    ASSERT_EQ(r.exit_code, 0) << d << ": " << r.err;
    EXPECT_NE(r.out.find("step     2/2"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("cuda:"), std::string::npos) << r.out;
  }
}

// A device of kind cuda over host memory, with no CUDA op registered in this
// process (nothing registers them until a real CUDA device is made): model
// construction must stop at its op check, before it touches the device.
class CudaKindHostDevice final : public kernels::Device {
 public:
  DeviceKind kind() const override { return DeviceKind::kCuda; }
  std::string Describe() const override { return "cuda-kind host device (test)"; }
  void Memset(void* p, int v, size_t n) override { std::memset(p, v, n); }
  void Copy(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void CopyToHost(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void CopyFromHost(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void Synchronize() override {}
  kernels::StreamId NewStream() override { return 0; }
  std::unique_ptr<kernels::Event> RecordEvent(kernels::StreamId) override { return nullptr; }
  void WaitEvent(kernels::StreamId, const kernels::Event&) override {}
  void HostFunc(kernels::StreamId, std::function<void()> fn) override { fn(); }

 protected:
  kernels::CachingAllocator& allocator() const override { return alloc_; }

 private:
  mutable kernels::CachingAllocator alloc_{
      [](size_t n) { return std::aligned_alloc(64, (n + 63) / 64 * 64); },
      [](void* p) { std::free(p); }, "test"};
};

proto::TrainConfig SmallConfig(const std::string& kind, const std::string& dtype) {
  proto::TrainConfig c = DefaultTrainConfig();
  c.mutable_model()->set_kind(kind);
  c.mutable_data()->set_batch_size(2);
  c.mutable_data()->set_seq_len(16);
  c.set_param_dtype(dtype);
  return c;
}

TEST(ModelOnCudaKind, MissingOpFailsConstructionWithOneLine) {
  CudaKindHostDevice dev;
  for (const std::string& kind : ModelKinds()) {
    for (const char* dtype : {"fp32", "bf16"}) {
      auto m = CreateModel(SmallConfig(kind, dtype), &dev);
      ASSERT_FALSE(m.ok()) << kind << " " << dtype << " built on a device with no ops";
      EXPECT_EQ(m.status().code(), absl::StatusCode::kUnimplemented) << m.status();
      const std::string msg(m.status().message());
      EXPECT_EQ(msg.rfind("the cuda device has no ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

// On a GPU: each model builds on the CUDA device or names the op it lacks.
TEST(GpuModels, EachModelBuildsOrNamesTheMissingOp) {
  const CudaProbe p = ProbeCuda();
  if (p.count == 0) GTEST_SKIP() << "no GPU: " << p.problem;
  auto dev = MakeDevice(DeviceChoice{DeviceKind::kCuda, 0, "cuda:0"}, 0);
  for (const std::string& kind : ModelKinds()) {
    for (const char* dtype : {"fp32", "bf16"}) {
      auto m = CreateModel(SmallConfig(kind, dtype), dev.get());
      if (m.ok()) {
        std::printf("gpu model %s %s: builds\n", kind.c_str(), dtype);
        continue;
      }
      std::printf("gpu model %s %s: %s\n", kind.c_str(), dtype,
                  std::string(m.status().message()).c_str());
      EXPECT_EQ(m.status().code(), absl::StatusCode::kUnimplemented) << m.status();
      EXPECT_EQ(std::string(m.status().message()).find('\n'), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace anvil

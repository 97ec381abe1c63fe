// The CPU Device: host memory through a caching allocator, OpenMP threads.
//
// Every op runs to completion before it returns, so every stream is the
// calling thread: events are complete when recorded, waits and Synchronize
// are no-ops and a host function runs at once. All ops use exactly threads() OpenMP threads (BLAS included), fixed
// at construction. One device must not be driven from two threads at once.
#include <omp.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/device.h"

namespace anvil::kernels {
namespace {

class DoneEvent final : public Event {
 public:
  bool Done() const override { return true; }
  void Wait() const override {}
};

void* AlignedAlloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  return std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
}

class CpuDevice final : public Device {
 public:
  explicit CpuDevice(int num_threads)
      : nt_(num_threads > 0 ? num_threads : omp_get_num_procs()),
        alloc_(AlignedAlloc, [](void* p) { std::free(p); }, "host") {
    cpu::SetBlasThreads(nt_);
  }

  DeviceKind kind() const override { return DeviceKind::kCpu; }
  std::string Describe() const override {
    return absl::StrCat("cpu: ", cpu::CpuModelName(), ", ", nt_, " threads, ",
                        cpu::CpuIsaSummary());
  }
  int threads() const override { return nt_; }

  void Memset(void* ptr, int value, size_t bytes) override {
    cpu::ParallelMemset(nt_, ptr, value, bytes);
  }
  void Copy(void* dst, const void* src, size_t bytes) override {
    cpu::ParallelMemcpy(nt_, dst, src, bytes);
  }
  void CopyToHost(void* host_dst, const void* src, size_t bytes) override {
    cpu::ParallelMemcpy(nt_, host_dst, src, bytes);
  }
  void CopyFromHost(void* dst, const void* host_src, size_t bytes) override {
    cpu::ParallelMemcpy(nt_, dst, host_src, bytes);
  }
  using Device::RecordEvent;
  using Device::WaitEvent;
  StreamId NewStream() override { return ++streams_; }
  void Synchronize() override {}
  std::unique_ptr<Event> RecordEvent(StreamId) override { return std::make_unique<DoneEvent>(); }
  void WaitEvent(StreamId, const Event&) override {}
  void HostFunc(StreamId, std::function<void()> fn) override { fn(); }

 protected:
  CachingAllocator& allocator() const override { return alloc_; }

 private:
  int nt_;
  StreamId streams_ = kComputeStream;
  mutable CachingAllocator alloc_;
};

}  // namespace

std::unique_ptr<Device> MakeCpuDevice(int num_threads) {
  cpu::RegisterCpuOps();
  return std::make_unique<CpuDevice>(num_threads);
}

namespace cpu {

void RegisterCpuOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterBasicOps();
    RegisterNormOps();
    RegisterLinearOps();
    RegisterAttentionOps();
    RegisterEmbeddingLossOps();
    RegisterOptimOps();
    RegisterConvOps();
    RegisterImageOps();
    RegisterDiffusionOps();
    RegisterConcatOps();
  });
}

}  // namespace cpu
}  // namespace anvil::kernels

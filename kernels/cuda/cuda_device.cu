#include <cuda_runtime.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_device.h"

namespace anvil::kernels {
namespace {

class CudaEvent final : public Event {
 public:
  explicit CudaEvent(cudaStream_t s) {
    ANVIL_CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming));
    ANVIL_CUDA_CHECK(cudaEventRecord(e_, s));
  }
  ~CudaEvent() override { cudaEventDestroy(e_); }
  bool Done() const override { return cudaEventQuery(e_) == cudaSuccess; }
  void Wait() const override { ANVIL_CUDA_CHECK(cudaEventSynchronize(e_)); }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_;
};

// cudaLaunchHostFunc's trampoline: runs and frees the heap-held function.
void CUDART_CB RunHostFunc(void* arg) {
  std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(arg));
  (*fn)();
}

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int ordinal)
      : ordinal_(ordinal),
        alloc_(
            [this](size_t bytes) -> void* {
              Use();
              void* p = nullptr;
              return cudaMalloc(&p, bytes) == cudaSuccess ? p : (cudaGetLastError(), nullptr);
            },
            [this](void* p) {
              Use();
              cudaDeviceSynchronize();  // every stream, before returning memory to the driver
              cudaFree(p);
            },
            "CUDA device") {
    Use();
    ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
    ANVIL_CUBLAS_CHECK(cublasCreate(&ctx_.blas));
    ANVIL_CUBLAS_CHECK(cublasSetStream(ctx_.blas, ctx_.stream));
    // Plain FP32: no TF32 tensor-op shortcuts, so results track the CPU.
    ANVIL_CUBLAS_CHECK(cublasSetMathMode(ctx_.blas, CUBLAS_PEDANTIC_MATH));
    ANVIL_CUDA_CHECK(cudaMalloc(&ctx_.scratch_d, sizeof(double) * cuda::kReduceBlocks));
    ANVIL_CUDA_CHECK(cudaMalloc(&ctx_.flag_d, sizeof(int)));
  }

  ~CudaDevice() override {
    Use();
    cudaDeviceSynchronize();
    alloc_.EmptyCache();
    for (cudaStream_t s : extra_streams_) cudaStreamDestroy(s);
    cudaFree(ctx_.scratch_d);
    cudaFree(ctx_.flag_d);
    cublasDestroy(ctx_.blas);
    cudaStreamDestroy(ctx_.stream);
  }

  DeviceKind kind() const override { return DeviceKind::kCuda; }
  std::string Describe() const override {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, ordinal_);
    return std::string("cuda:") + std::to_string(ordinal_) + " " + prop.name;
  }

  void Memset(void* ptr, int value, size_t bytes) override {
    Use();
    ANVIL_CUDA_CHECK(cudaMemsetAsync(ptr, value, bytes, ctx_.stream));
  }
  void Copy(void* dst, const void* src, size_t bytes) override {
    Use();
    ANVIL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_.stream));
  }
  // Host copies complete before returning: callers read (or reuse) the host
  // buffer immediately, and it may be pageable.
  void CopyToHost(void* host_dst, const void* src, size_t bytes) override {
    Use();
    ANVIL_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream));
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }
  void CopyFromHost(void* dst, const void* host_src, size_t bytes) override {
    Use();
    ANVIL_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ctx_.stream));
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }
  using Device::RecordEvent;
  using Device::WaitEvent;
  bool asynchronous() const override { return true; }
  StreamId NewStream() override {
    Use();
    cudaStream_t s = nullptr;
    ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    std::lock_guard<std::mutex> lock(mu_);
    extra_streams_.push_back(s);
    return static_cast<StreamId>(extra_streams_.size());
  }
  void Synchronize() override {
    Use();
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    std::lock_guard<std::mutex> lock(mu_);
    for (cudaStream_t s : extra_streams_) ANVIL_CUDA_CHECK(cudaStreamSynchronize(s));
  }
  std::unique_ptr<Event> RecordEvent(StreamId s) override {
    Use();
    return std::make_unique<CudaEvent>(Stream(s));
  }
  void WaitEvent(StreamId s, const Event& e) override {
    Use();
    ANVIL_CUDA_CHECK(cudaStreamWaitEvent(Stream(s), static_cast<const CudaEvent&>(e).get(), 0));
  }
  // The function must not call CUDA (cudaLaunchHostFunc's rule).
  void HostFunc(StreamId s, std::function<void()> fn) override {
    Use();
    auto* held = new std::function<void()>(std::move(fn));
    ANVIL_CUDA_CHECK(cudaLaunchHostFunc(Stream(s), RunHostFunc, held));
  }
  void* native_stream(StreamId s) override { return Stream(s); }

  const cuda::Ctx& ctx() {
    Use();
    return ctx_;
  }

 protected:
  CachingAllocator& allocator() const override { return alloc_; }

 private:
  // Ops may be called from a thread whose current device differs.
  void Use() const { ANVIL_CUDA_CHECK(cudaSetDevice(ordinal_)); }
  cudaStream_t Stream(StreamId s) {
    if (s == kComputeStream) return ctx_.stream;
    std::lock_guard<std::mutex> lock(mu_);
    ANVIL_KCHECK(s > 0 && static_cast<size_t>(s) <= extra_streams_.size(), "no such CUDA stream");
    return extra_streams_[s - 1];
  }

  const int ordinal_;
  cuda::Ctx ctx_{};
  std::mutex mu_;  // extra_streams_
  std::vector<cudaStream_t> extra_streams_;
  mutable CachingAllocator alloc_;
};

}  // namespace

namespace cuda {

const Ctx& CtxOf(Device& d) {
  ANVIL_KCHECK(d.kind() == DeviceKind::kCuda, "a CUDA op ran on another device");
  return static_cast<CudaDevice&>(d).ctx();
}

}  // namespace cuda

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::unique_ptr<Device> MakeCudaDevice(int ordinal) {
  const int n = CudaDeviceCount();
  ANVIL_KCHECK(ordinal >= 0 && ordinal < n, "no such CUDA device");
  cuda::RegisterCudaOps();  // optim.reduce_to included
  return std::make_unique<CudaDevice>(ordinal);
}

}  // namespace anvil::kernels

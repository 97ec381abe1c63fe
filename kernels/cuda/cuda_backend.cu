// The CUDA Backend (cuda_backend.h): owns the device, one stream, a cuBLAS
// handle bound to it, and a small reduction scratch; forwards each op to its
// launcher in ops.cuh after making this backend's device current.
#include <memory>

#include "kernels/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"

namespace anvil::kernels {
namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    ANVIL_CUDA_CHECK(cudaSetDevice(device_));
    ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
    ANVIL_CUBLAS_CHECK(cublasCreate(&ctx_.blas));
    ANVIL_CUBLAS_CHECK(cublasSetStream(ctx_.blas, ctx_.stream));
    // Plain FP32: no TF32 tensor-op shortcuts, so results track the CPU.
    ANVIL_CUBLAS_CHECK(cublasSetMathMode(ctx_.blas, CUBLAS_PEDANTIC_MATH));
    ANVIL_CUDA_CHECK(cudaMalloc(&ctx_.scratch_d, sizeof(double) * cuda::kReduceBlocks));
    ANVIL_CUDA_CHECK(cudaMalloc(&ctx_.flag_d, sizeof(int)));
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(ctx_.stream);
    cudaFree(ctx_.scratch_d);
    cudaFree(ctx_.flag_d);
    cublasDestroy(ctx_.blas);
    cudaStreamDestroy(ctx_.stream);
  }

  const char* Name() const override { return "cuda"; }

  void* Alloc(size_t bytes) override {
    Use();
    void* p = nullptr;
    ANVIL_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 256 : bytes));  // 256-byte aligned
    return p;
  }
  void Free(void* ptr) override {
    Use();
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));  // no op may still use it
    ANVIL_CUDA_CHECK(cudaFree(ptr));
  }
  void Memset(void* ptr, int value, size_t bytes) override {
    Use();
    ANVIL_CUDA_CHECK(cudaMemsetAsync(ptr, value, bytes, ctx_.stream));
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
  void Synchronize() override {
    Use();
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }

  void Convert(void* dst, DType dst_type, const void* src, DType src_type, size_t n) override {
    Use();
    cuda::Convert(ctx_, dst, dst_type, src, src_type, n);
  }

  void EncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B,
                      int T, int C) override {
    Use();
    cuda::EncoderForward(ctx_, out, tokens, wte, wpe, B, T, C);
  }
  void EncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B,
                       int T, int C) override {
    Use();
    cuda::EncoderBackward(ctx_, dwte, dwpe, dout, tokens, B, T, C);
  }

  void LayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                        const float* bias, int N, int C) override {
    Use();
    cuda::LayerNormForward(ctx_, out, mean, rstd, inp, weight, bias, N, C);
  }
  void LayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, const float* mean,
                         const float* rstd, int N, int C) override {
    Use();
    cuda::LayerNormBackward(ctx_, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
  }

  void MatmulForward(float* out, const float* inp, const float* weight, const float* bias, int N,
                     int C, int OC) override {
    Use();
    cuda::MatmulForward(ctx_, out, inp, weight, bias, N, C, OC);
  }
  void MatmulBackward(float* dinp, float* dweight, float* dbias, const float* dout,
                      const float* inp, const float* weight, int N, int C, int OC) override {
    Use();
    cuda::MatmulBackward(ctx_, dinp, dweight, dbias, dout, inp, weight, N, C, OC);
  }

  void AttentionForward(float* out, float* att, const float* qkv, int B, int T, int C,
                        int NH) override {
    ANVIL_KCHECK(NH > 0 && C % NH == 0, "C must be divisible by NH");
    Use();
    cuda::AttentionForward(ctx_, out, att, qkv, B, T, C, NH);
  }
  void AttentionBackward(float* dqkv, float* datt, const float* dout, const float* qkv,
                         const float* att, int B, int T, int C, int NH) override {
    ANVIL_KCHECK(NH > 0 && C % NH == 0, "C must be divisible by NH");
    Use();
    cuda::AttentionBackward(ctx_, dqkv, datt, dout, qkv, att, B, T, C, NH);
  }

  void GeluForward(float* out, const float* inp, size_t n) override {
    Use();
    cuda::GeluForward(ctx_, out, inp, n);
  }
  void GeluBackward(float* dinp, const float* inp, const float* dout, size_t n) override {
    Use();
    cuda::GeluBackward(ctx_, dinp, inp, dout, n);
  }

  void ResidualForward(float* out, const float* a, const float* b, size_t n) override {
    Use();
    cuda::ResidualForward(ctx_, out, a, b, n);
  }
  void Accumulate(float* dst, const float* src, size_t n) override {
    Use();
    cuda::Accumulate(ctx_, dst, src, n);
  }
  void Scale(float* x, float alpha, size_t n) override {
    Use();
    cuda::Scale(ctx_, x, alpha, n);
  }

  void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits,
                                  const int32_t* targets, int N, int V) override {
    Use();
    cuda::SoftmaxCrossEntropyForward(ctx_, losses, probs, logits, targets, N, V);
  }
  void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets,
                                   float dloss, int N, int V) override {
    Use();
    cuda::SoftmaxCrossEntropyBackward(ctx_, dlogits, probs, targets, dloss, N, V);
  }

  void AdamW(float* param, const float* grad, float* m, float* v, size_t n,
             const AdamWParams& p) override {
    Use();
    cuda::AdamW(ctx_, param, grad, m, v, n, p);
  }
  double SquaredNorm(const float* x, size_t n) override {
    Use();
    return cuda::SquaredNorm(ctx_, x, n);
  }
  bool HasNonFinite(const float* x, size_t n) override {
    Use();
    return cuda::HasNonFinite(ctx_, x, n);
  }

 private:
  // Ops may be called from a thread whose current device differs.
  void Use() { ANVIL_CUDA_CHECK(cudaSetDevice(device_)); }

  const int device_;
  cuda::Ctx ctx_{};
};

}  // namespace

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::unique_ptr<Backend> MakeCudaBackend(int device) {
  const int n = CudaDeviceCount();
  ANVIL_KCHECK(device >= 0 && device < n, "no such CUDA device");
  return std::make_unique<CudaBackend>(device);
}

}  // namespace anvil::kernels

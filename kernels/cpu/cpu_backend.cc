// The CPU Backend: host memory, OpenMP-threaded ops (ops.h), OpenBLAS sgemm.
//
// "Streams" are trivial here: every op completes before it returns, so
// Synchronize() is a no-op. All ops use exactly num_threads_ OpenMP threads
// (BLAS included), fixed at construction. One backend must not be driven
// from two threads at once (the same rule as one CUDA stream).
#include <omp.h>

#include <cstdlib>
#include <memory>

#include "kernels/backend.h"
#include "kernels/check.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/ops.h"

namespace anvil::kernels {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads) : nt_(num_threads > 0 ? num_threads : omp_get_num_procs()) {
    cpu::SetBlasThreads(nt_);
  }

  const char* Name() const override { return "cpu"; }

  void* Alloc(size_t bytes) override {
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    ANVIL_KCHECK(p != nullptr, "out of host memory");
    return p;
  }
  void Free(void* ptr) override { std::free(ptr); }
  void Memset(void* ptr, int value, size_t bytes) override {
    cpu::ParallelMemset(nt_, ptr, value, bytes);
  }
  void CopyToHost(void* host_dst, const void* src, size_t bytes) override {
    cpu::ParallelMemcpy(nt_, host_dst, src, bytes);
  }
  void CopyFromHost(void* dst, const void* host_src, size_t bytes) override {
    cpu::ParallelMemcpy(nt_, dst, host_src, bytes);
  }
  void Synchronize() override {}

  void Convert(void* dst, DType dst_type, const void* src, DType src_type, size_t n) override {
    cpu::Convert(nt_, dst, dst_type, src, src_type, n);
  }

  void EncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B,
                      int T, int C) override {
    cpu::EncoderForward(nt_, out, tokens, wte, wpe, B, T, C);
  }
  void EncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B,
                       int T, int C) override {
    cpu::EncoderBackward(nt_, dwte, dwpe, dout, tokens, B, T, C);
  }

  void LayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                        const float* bias, int N, int C) override {
    cpu::LayerNormForward(nt_, out, mean, rstd, inp, weight, bias, N, C);
  }
  void LayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, const float* mean,
                         const float* rstd, int N, int C) override {
    cpu::LayerNormBackward(nt_, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
  }

  void MatmulForward(float* out, const float* inp, const float* weight, const float* bias, int N,
                     int C, int OC) override {
    cpu::MatmulForward(nt_, out, inp, weight, bias, N, C, OC);
  }
  void MatmulBackward(float* dinp, float* dweight, float* dbias, const float* dout,
                      const float* inp, const float* weight, int N, int C, int OC) override {
    cpu::MatmulBackward(nt_, dinp, dweight, dbias, dout, inp, weight, N, C, OC);
  }

  void AttentionForward(float* out, float* att, const float* qkv, int B, int T, int C,
                        int NH) override {
    ANVIL_KCHECK(NH > 0 && C % NH == 0, "C must be divisible by NH");
    cpu::AttentionForward(nt_, out, att, qkv, B, T, C, NH);
  }
  void AttentionBackward(float* dqkv, float* datt, const float* dout, const float* qkv,
                         const float* att, int B, int T, int C, int NH) override {
    ANVIL_KCHECK(NH > 0 && C % NH == 0, "C must be divisible by NH");
    cpu::AttentionBackward(nt_, dqkv, datt, dout, qkv, att, B, T, C, NH);
  }

  void GeluForward(float* out, const float* inp, size_t n) override {
    cpu::GeluForward(nt_, out, inp, n);
  }
  void GeluBackward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cpu::GeluBackward(nt_, dinp, inp, dout, n);
  }

  void ResidualForward(float* out, const float* a, const float* b, size_t n) override {
    cpu::ResidualForward(nt_, out, a, b, n);
  }
  void Accumulate(float* dst, const float* src, size_t n) override {
    cpu::Accumulate(nt_, dst, src, n);
  }
  void Scale(float* x, float alpha, size_t n) override { cpu::Scale(nt_, x, alpha, n); }

  void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits,
                                  const int32_t* targets, int N, int V) override {
    cpu::SoftmaxCrossEntropyForward(nt_, losses, probs, logits, targets, N, V);
  }
  void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets,
                                   float dloss, int N, int V) override {
    cpu::SoftmaxCrossEntropyBackward(nt_, dlogits, probs, targets, dloss, N, V);
  }

  void AdamW(float* param, const float* grad, float* m, float* v, size_t n,
             const AdamWParams& p) override {
    cpu::AdamW(nt_, param, grad, m, v, n, p);
  }
  double SquaredNorm(const float* x, size_t n) override { return cpu::SquaredNorm(nt_, x, n); }
  bool HasNonFinite(const float* x, size_t n) override { return cpu::HasNonFinite(nt_, x, n); }

 private:
  const int nt_;
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(int num_threads) {
  return std::make_unique<CpuBackend>(num_threads);
}

}  // namespace anvil::kernels

// CUDA implementations of the loss family (kernels/ops/loss.h,
// diffusion_ops.h): fused softmax + cross-entropy and the mean squared
// error, F32 or BF16 inputs, fp32 arithmetic.
//
// Cross-entropy runs the fp32 kernels (softmax_xent.cu); BF16 logits are
// widened once into scratch, and a BF16 dlogits is widened, accumulated in
// fp32 and rounded once (as the CPU does). MSE sums fixed blocks of
// kMseBlock elements (fp32 within a block, double across blocks, in order),
// like the CPU: the loss is deterministic and written on the device, so no
// host synchronisation is needed.
#include "kernels/cuda/family_util.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/diffusion_ops.h"
#include "kernels/ops/loss.h"

namespace anvil::kernels::cuda {
namespace {

constexpr int64_t kMseBlock = 4096;
constexpr int kMseThreads = 256;

void XentForwardCuda(Device& d, const TensorView& losses, const TensorView& probs,
                     const TensorView& logits, const TensorView& targets) {
  const Ctx& ctx = CtxOf(d);
  const size_t n = static_cast<size_t>(logits.numel());
  Tmp wide(d, logits.dtype == DType::kF32 ? 0 : sizeof(float) * n);
  const float* x = logits.as<float>();
  if (logits.dtype != DType::kF32) {
    Convert(ctx, wide.get(), DType::kF32, logits.data, logits.dtype, n);
    x = wide.f();
  }
  SoftmaxCrossEntropyForward(ctx, losses.as<float>(), probs.as<float>(), x, targets.as<int32_t>(),
                             static_cast<int>(logits.rows()), static_cast<int>(logits.cols()));
}

void XentBackwardCuda(Device& d, const TensorView& dlogits, const TensorView& probs,
                      const TensorView& targets, float dloss) {
  const Ctx& ctx = CtxOf(d);
  const size_t n = static_cast<size_t>(dlogits.numel());
  const bool f32 = dlogits.dtype == DType::kF32;
  Tmp wide(d, f32 ? 0 : sizeof(float) * n);
  float* g = f32 ? dlogits.as<float>() : wide.f();
  if (!f32) Convert(ctx, g, DType::kF32, dlogits.data, dlogits.dtype, n);
  SoftmaxCrossEntropyBackward(ctx, g, probs.as<float>(), targets.as<int32_t>(), dloss,
                              static_cast<int>(probs.rows()), static_cast<int>(probs.cols()));
  if (!f32) Convert(ctx, dlogits.data, dlogits.dtype, g, DType::kF32, n);
}

// One block per kMseBlock elements: its fp32 sum of squared differences.
__global__ void MsePartialKernel(double* part, TArg pred, TArg target, int64_t n) {
  const int64_t off = blockIdx.x * kMseBlock;
  const int64_t end = off + kMseBlock < n ? off + kMseBlock : n;
  float s = 0.0f;
  for (int64_t i = off + threadIdx.x; i < end; i += blockDim.x) {
    const float dv = pred.ld(i) - target.ld(i);
    s += dv * dv;
  }
  s = BlockSum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void MseFinishKernel(float* loss, const double* part, int64_t blocks, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < blocks; ++b) total += part[b];
  *loss = static_cast<float>(total / static_cast<double>(n));
}

void MseLossForwardCuda(Device& d, const TensorView& loss, const TensorView& pred,
                        const TensorView& target) {
  const Ctx& ctx = CtxOf(d);
  const int64_t n = pred.numel(), blocks = (n + kMseBlock - 1) / kMseBlock;
  if (n == 0) {
    d.Memset(loss.data, 0, sizeof(float));
    return;
  }
  Tmp part(d, sizeof(double) * blocks);
  MsePartialKernel<<<static_cast<unsigned>(blocks), kMseThreads, 0, ctx.stream>>>(
      static_cast<double*>(part.get()), Arg(pred), Arg(target), n);
  ANVIL_CUDA_LAUNCH_CHECK();
  MseFinishKernel<<<1, 1, 0, ctx.stream>>>(loss.as<float>(), static_cast<double*>(part.get()),
                                           blocks, n);
  ANVIL_CUDA_LAUNCH_CHECK();
}

struct MseBackwardF {
  TArg dpred, pred, target;
  float k;
  __device__ void operator()(int64_t i) const { dpred.add(i, k * (pred.ld(i) - target.ld(i))); }
};

void MseLossBackwardCuda(Device& d, const TensorView& dpred, const TensorView& pred,
                         const TensorView& target, float dloss) {
  const int64_t n = pred.numel();
  if (n == 0) return;
  const float k = static_cast<float>(2.0 * dloss / static_cast<double>(n));
  LaunchMap(CtxOf(d), n, MseBackwardF{Arg(dpred), Arg(pred), Arg(target), k});
}

}  // namespace

void RegisterLossCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<SoftmaxXentForwardFn>(k, "loss.softmax_xent_forward", &XentForwardCuda, both);
  RegisterOp<SoftmaxXentBackwardFn>(k, "loss.softmax_xent_backward", &XentBackwardCuda, both);
  RegisterOp<MseLossForwardFn>(k, "loss.mse_forward", &MseLossForwardCuda, both);
  RegisterOp<MseLossBackwardFn>(k, "loss.mse_backward", &MseLossBackwardCuda, both);
}

}  // namespace anvil::kernels::cuda

// CUDA implementation of the conv family (kernels/ops/conv.h) on cuDNN's
// convolution API: NHWC activations as they lie, F32 or BF16 compute
// (x's dtype; bf16 on tensor cores with fp32 accumulation, fp32 restricted
// to FMA kernels so results track the CPU's fp32).
//
// cuDNN wants the filter in the activations' layout, so the PyTorch weight
// (OC,C,KH,KW) is transposed (and converted to x's dtype) into (OC,KH,KW,C)
// scratch per call, and the weight gradient transposed back and added to the
// fp32 dweight. An output, dx or bias of another dtype goes through scratch
// in x's dtype and one typed kernel. dbias is a column_reduce.cuh sum.
// A bf16 weight gradient is therefore rounded to bf16 once before it is
// added (PyTorch's bf16 autocast does the same).
//
// Descriptors and the algorithms cudnnGet*_v7 ranks are cached per host
// thread, GPU and (shape, stride, padding, dtype); workspace comes from the
// device's caching allocator per call.
#include <cudnn.h>

#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/column_reduce.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/conv.h"

#define ANVIL_CUDNN_CHECK(expr)                                                 \
  do {                                                                          \
    const cudnnStatus_t _anvil_st = (expr);                                     \
    if (_anvil_st != CUDNN_STATUS_SUCCESS) {                                    \
      std::fprintf(stderr, "%s:%d: cuDNN error %s in %s\n", __FILE__, __LINE__, \
                   cudnnGetErrorString(_anvil_st), #expr);                      \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

namespace anvil::kernels::cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t{1} << 30;

struct Geometry {
  int64_t B, H, W, C, OC, KH, KW, OH, OW;
  int sh, sw, ph, pw;
  DType t;
};

Geometry GeometryOf(const TensorView& x, const TensorView& w, const Conv2dParams& p) {
  Geometry g{x.dim(0), x.dim(1), x.dim(2),   x.dim(3),   w.dim(0), w.dim(2), w.dim(3),
             0,        0,        p.stride_h, p.stride_w, p.pad_h,  p.pad_w,  x.dtype};
  g.OH = Conv2dOutSize(g.H, g.KH, g.sh, g.ph);
  g.OW = Conv2dOutSize(g.W, g.KW, g.sw, g.pw);
  return g;
}

// One ranked algorithm of some direction (its enum stored as int).
struct Algo {
  int algo;
  size_t workspace;
  cudnnMathType_t math;
};

using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int,
                           int, int, int>;

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  // Usable algorithms per direction, best first; calls start at the front
  // and drop one that cuDNN refuses at run time (the heuristic can rank an
  // algorithm it then reports as unsupported for the exact call).
  std::vector<Algo> fwd, data, filter;
  ~ConvPlan() {
    if (x != nullptr) cudnnDestroyTensorDescriptor(x);
    if (y != nullptr) cudnnDestroyTensorDescriptor(y);
    if (w != nullptr) cudnnDestroyFilterDescriptor(w);
    if (conv != nullptr) cudnnDestroyConvolutionDescriptor(conv);
  }
};

struct DnnState {
  cudnnHandle_t handle = nullptr;
  std::map<PlanKey, std::unique_ptr<ConvPlan>> plans;
};

DnnState& ThreadDnn(cudaStream_t stream) {
  thread_local std::unordered_map<int, std::unique_ptr<DnnState>> states;
  int dev = 0;
  ANVIL_CUDA_CHECK(cudaGetDevice(&dev));
  std::unique_ptr<DnnState>& s = states[dev];
  if (s == nullptr) {
    s = std::make_unique<DnnState>();
    ANVIL_CUDNN_CHECK(cudnnCreate(&s->handle));
  }
  ANVIL_CUDNN_CHECK(cudnnSetStream(s->handle, stream));
  return *s;
}

// The heuristic's usable algorithms (succeeded, within the workspace cap),
// best first; for fp32 the FMA ones first (CUDNN_DEFAULT_MATH would allow
// TF32 tensor cores on Ampere and later, 10 mantissa bits), then the rest.
template <class Perf>
std::vector<Algo> Usable(const Perf* perf, int n, bool fp32) {
  std::vector<Algo> r;
  for (int pass = fp32 ? 0 : 1; pass < 2; ++pass) {
    for (int i = 0; i < n; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspace) continue;
      const bool fma = perf[i].mathType == CUDNN_FMA_MATH;
      if (fp32 && (pass == 0) != fma) continue;
      r.push_back(Algo{static_cast<int>(perf[i].algo), perf[i].memory, perf[i].mathType});
    }
  }
  return r;
}

// Runs call(algo, workspace, bytes) with the first algorithm cuDNN accepts,
// dropping the ones it refuses; aborts when none is left.
template <class Call>
void RunFirstAccepted(Device& d, cudnnConvolutionDescriptor_t conv, std::vector<Algo>& algos,
                      const char* what, const Call& call) {
  while (!algos.empty()) {
    const Algo a = algos.front();
    Tmp ws(d, a.workspace);
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, a.math));
    const cudnnStatus_t st = call(a.algo, ws.get(), a.workspace);
    if (st == CUDNN_STATUS_SUCCESS) return;
    if (st != CUDNN_STATUS_NOT_SUPPORTED && st != CUDNN_STATUS_BAD_PARAM) {
      ANVIL_CUDNN_CHECK(st);
    }
    algos.erase(algos.begin());
  }
  std::fprintf(stderr, "anvil: cuDNN has no %s convolution for this shape\n", what);
  std::abort();
}

ConvPlan& PlanFor(DnnState& st, const Geometry& g) {
  const PlanKey key{g.B,  g.H,  g.W,  g.C,  g.OC, g.KH,
                    g.KW, g.sh, g.sw, g.ph, g.pw, static_cast<int>(g.t)};
  std::unique_ptr<ConvPlan>& slot = st.plans[key];
  if (slot != nullptr) return *slot;
  auto plan = std::make_unique<ConvPlan>();
  ConvPlan& p = *plan;
  const bool fp32 = g.t == DType::kF32;
  const cudnnDataType_t dt = fp32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_BFLOAT16;
  const auto I = [](int64_t v) { return static_cast<int>(v); };
  ANVIL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
  ANVIL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
  ANVIL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  ANVIL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
  ANVIL_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NHWC, dt, I(g.B), I(g.C), I(g.H), I(g.W)));
  ANVIL_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NHWC, dt, I(g.B), I(g.OC), I(g.OH), I(g.OW)));
  ANVIL_CUDNN_CHECK(
      cudnnSetFilter4dDescriptor(p.w, dt, CUDNN_TENSOR_NHWC, I(g.OC), I(g.C), I(g.KH), I(g.KW)));
  ANVIL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p.conv, g.ph, g.pw, g.sh, g.sw, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  ANVIL_CUDNN_CHECK(
      cudnnSetConvolutionMathType(p.conv, fp32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  int n = 0;
  {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    ANVIL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
        st.handle, p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    p.fwd = Usable(perf, n, fp32);
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    ANVIL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        st.handle, p.w, p.y, p.conv, p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
    p.data = Usable(perf, n, fp32);
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    ANVIL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        st.handle, p.x, p.y, p.conv, p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
    p.filter = Usable(perf, n, fp32);
  }
  slot = std::move(plan);
  return *slot;
}

// wt (OC,KH,KW,C) in wt's dtype = w (OC,C,KH,KW), any float dtype.
struct WeightToNhwcF {
  TArg wt, w;
  int64_t C, KH, KW;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, kw = (i / C) % KW, kh = (i / (C * KW)) % KH, oc = i / (C * KW * KH);
    wt.st(i, w.ld(((oc * C + c) * KH + kh) * KW + kw));
  }
};
// dw (OC,C,KH,KW) += dwt (OC,KH,KW,C).
struct WeightGradFromNhwcF {
  TArg dw, dwt;
  int64_t C, KH, KW;
  __device__ void operator()(int64_t i) const {
    const int64_t kw = i % KW, kh = (i / KW) % KH, c = (i / (KW * KH)) % C, oc = i / (KW * KH * C);
    dw.add(i, dwt.ld(((oc * KH + kh) * KW + kw) * C + c));
  }
};
// out = y (+ bias[c]); y may be out itself.
struct BiasStoreF {
  TArg out, y, bias;
  int64_t OC;
  __device__ void operator()(int64_t i) const {
    out.st(i, y.ld(i) + (bias.ok() ? bias.ld(i % OC) : 0.0f));
  }
};
struct PutF {  // dst (+)= src
  TArg dst, src;
  bool accumulate;
  __device__ void operator()(int64_t i) const { dst.put(i, src.ld(i), accumulate); }
};
struct DoutColF {
  TArg dout;
  int64_t OC;
  __device__ void operator()(int64_t, int64_t r, int64_t c, float* v) const {
    v[0] = dout.ld(r * OC + c);
  }
};

size_t Size(const Geometry& g, int64_t n) { return static_cast<size_t>(n) * DTypeSize(g.t); }

void Conv2dForwardCuda(Device& d, const TensorView& out, const TensorView& x,
                       const TensorView& weight, const TensorView& bias, const Conv2dParams& p) {
  const Ctx& ctx = CtxOf(d);
  const Geometry g = GeometryOf(x, weight, p);
  if (out.numel() == 0) return;
  DnnState& st = ThreadDnn(ctx.stream);
  ConvPlan& plan = PlanFor(st, g);
  const int64_t nw = g.OC * g.KH * g.KW * g.C;
  Tmp wt(d, Size(g, nw));
  LaunchMap(ctx, nw, WeightToNhwcF{wt.arg(g.t), Arg(weight), g.C, g.KH, g.KW});
  const bool direct = out.dtype == g.t;
  Tmp ytmp(d, direct ? 0 : Size(g, out.numel()));
  void* y = direct ? out.data : ytmp.get();
  const float one = 1.0f, zero = 0.0f;
  RunFirstAccepted(d, plan.conv, plan.fwd, "forward", [&](int algo, void* ws, size_t bytes) {
    return cudnnConvolutionForward(st.handle, &one, plan.x, x.data, plan.w, wt.get(), plan.conv,
                                   static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws, bytes, &zero,
                                   plan.y, y);
  });
  if (bias.present() || !direct) {
    LaunchMap(ctx, out.numel(), BiasStoreF{Arg(out), TArg{y, g.t}, Arg(bias), g.OC});
  }
}

void Conv2dBackwardCuda(Device& d, const TensorView& dx, const TensorView& dweight,
                        const TensorView& dbias, const TensorView& dout, const TensorView& x,
                        const TensorView& weight, const Conv2dParams& p) {
  const Ctx& ctx = CtxOf(d);
  const Geometry g = GeometryOf(x, weight, p);
  if (dout.numel() == 0) return;
  DnnState& st = ThreadDnn(ctx.stream);
  ConvPlan& plan = PlanFor(st, g);
  const int64_t nw = g.OC * g.KH * g.KW * g.C;
  const float one = 1.0f, zero = 0.0f;
  if (dx.present()) {
    Tmp wt(d, Size(g, nw));
    LaunchMap(ctx, nw, WeightToNhwcF{wt.arg(g.t), Arg(weight), g.C, g.KH, g.KW});
    const bool direct = dx.dtype == g.t;
    Tmp dxt(d, direct ? 0 : Size(g, dx.numel()));
    RunFirstAccepted(
        d, plan.conv, plan.data, "backward-data", [&](int algo, void* ws, size_t bytes) {
          return cudnnConvolutionBackwardData(
              st.handle, &one, plan.w, wt.get(), plan.y, dout.data, plan.conv,
              static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), ws, bytes,
              direct && p.accumulate_dx ? &one : &zero, plan.x, direct ? dx.data : dxt.get());
        });
    if (!direct) LaunchMap(ctx, dx.numel(), PutF{Arg(dx), dxt.arg(g.t), p.accumulate_dx});
  }
  if (dweight.present()) {
    Tmp dwt(d, Size(g, nw));
    RunFirstAccepted(
        d, plan.conv, plan.filter, "backward-filter", [&](int algo, void* ws, size_t bytes) {
          return cudnnConvolutionBackwardFilter(st.handle, &one, plan.x, x.data, plan.y, dout.data,
                                                plan.conv,
                                                static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo),
                                                ws, bytes, &zero, plan.w, dwt.get());
        });
    LaunchMap(ctx, nw, WeightGradFromNhwcF{Arg(dweight), dwt.arg(g.t), g.C, g.KH, g.KW});
  }
  if (dbias.present()) {
    ColumnReduce<1>(d, ctx, DoutColF{Arg(dout), g.OC}, 1, g.B * g.OH * g.OW, g.OC,
                    ColOuts<1>{{ColOut{Arg(dbias)}}});
  }
}

}  // namespace

void RegisterConvCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<Conv2dForwardFn>(k, "conv.conv2d_forward", &Conv2dForwardCuda, both);
  RegisterOp<Conv2dBackwardFn>(k, "conv.conv2d_backward", &Conv2dBackwardCuda, both);
}

}  // namespace anvil::kernels::cuda

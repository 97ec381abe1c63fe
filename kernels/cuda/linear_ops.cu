// CUDA implementation of the linear family (kernels/ops/linear.h).
//
// F32: cuBLAS sgemm in pedantic fp32 (matmul.cu), unchanged, so results
// track the CPU's. BF16: cuBLASLt, bf16 x bf16 with fp32 accumulation
// (CUBLAS_COMPUTE_32F), writing bf16 or fp32 directly; the bias is fused as
// the BIAS epilogue and accumulation as beta = 1. Where cuBLASLt offers no
// algorithm for a combination (say an fp32 bias on a bf16 output), the same
// product runs through cublasGemmEx and the bias through a small kernel.
//
// Row-major (r,c) buffers read column-major are their transposes, so
//   out^T (OC,N)  = op_T(W) (OC,C) * x^T (C,N)
//   dx^T  (C,N)   = W^T (C,OC) * dout^T (OC,N)
//   dW^T  (C,OC) += x^T (C,N) * op_T(dout^T) (N,OC)
// cuBLASLt state (handle, descriptors and the heuristic's algorithm per
// shape, dtypes and pointer alignment) is cached per host thread and GPU;
// the workspace comes from the device's caching allocator per call.
#include <cublasLt.h>

#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "kernels/cuda/column_reduce.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/linear.h"

namespace anvil::kernels::cuda {
namespace {

constexpr size_t kLtWorkspace = size_t{32} << 20;  // cuBLASLt's recommendation for Hopper

cudaDataType_t CudaType(DType t) {
  switch (t) {
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kF16:
      return CUDA_R_16F;
    default:
      return CUDA_R_32F;
  }
}

// Largest power of two (<= 256) dividing the address.
uint32_t Alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al != 0) al >>= 1;
  return al;
}

// One GEMM in cuBLAS's column-major terms: D (m,n) = op(A) op(B) + beta D + bias[row].
struct Gemm {
  cublasOperation_t ta, tb;
  int64_t m, n, k;
  const void* A;
  DType at;
  int64_t lda;
  const void* B;
  DType bt;
  int64_t ldb;
  void* D;
  DType dt;
  int64_t ldd;
  float beta;
  const void* bias;  // length m, or null
  DType bias_t;
};

using LtKey = std::tuple<int, int, int64_t, int64_t, int64_t, int, int, int, int64_t, int64_t,
                         int64_t, bool, int, bool, uint32_t, uint32_t, uint32_t>;

struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulHeuristicResult_t algo{};
  bool usable = false;
  ~LtPlan() {
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

struct LtState {
  cublasLtHandle_t handle = nullptr;
  std::map<LtKey, std::unique_ptr<LtPlan>> plans;
};

// This thread's cuBLASLt state for the current GPU (created on first use and
// kept for the thread's life: a handle is cheap to keep, costly to make).
LtState& ThreadLt() {
  thread_local std::unordered_map<int, std::unique_ptr<LtState>> states;
  int dev = 0;
  ANVIL_CUDA_CHECK(cudaGetDevice(&dev));
  std::unique_ptr<LtState>& s = states[dev];
  if (s == nullptr) {
    s = std::make_unique<LtState>();
    ANVIL_CUBLAS_CHECK(cublasLtCreate(&s->handle));
  }
  return *s;
}

LtPlan& PlanFor(LtState& st, const Gemm& g) {
  const LtKey key{g.ta,
                  g.tb,
                  g.m,
                  g.n,
                  g.k,
                  static_cast<int>(g.at),
                  static_cast<int>(g.bt),
                  static_cast<int>(g.dt),
                  g.lda,
                  g.ldb,
                  g.ldd,
                  g.bias != nullptr,
                  static_cast<int>(g.bias_t),
                  g.beta != 0.0f,
                  Alignment(g.A),
                  Alignment(g.B),
                  Alignment(g.D)};
  std::unique_ptr<LtPlan>& plan = st.plans[key];
  if (plan != nullptr) return *plan;
  plan = std::make_unique<LtPlan>();
  LtPlan& p = *plan;
  ANVIL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  ANVIL_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &g.ta, sizeof(g.ta)));
  ANVIL_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &g.tb, sizeof(g.tb)));
  if (g.bias != nullptr) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    ANVIL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    const int32_t bt = CudaType(g.bias_t);
    ANVIL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
  }
  const bool at_n = g.ta == CUBLAS_OP_N, bt_n = g.tb == CUBLAS_OP_N;
  ANVIL_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&p.a, CudaType(g.at), at_n ? g.m : g.k, at_n ? g.k : g.m, g.lda));
  ANVIL_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&p.b, CudaType(g.bt), bt_n ? g.k : g.n, bt_n ? g.n : g.k, g.ldb));
  ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, CudaType(g.dt), g.m, g.n, g.ldd));
  cublasLtMatmulPreference_t pref = nullptr;
  ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kLtWorkspace;
  ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t al[3] = {Alignment(g.A), Alignment(g.B), Alignment(g.D)};
  ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], sizeof(al[0])));
  ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], sizeof(al[1])));
  ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], sizeof(al[2])));
  ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[2], sizeof(al[2])));
  int found = 0;
  // An unsupported combination is an answer here, not an error: fall back.
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(st.handle, p.op, p.a, p.b, p.d, p.d, pref, 1, &p.algo, &found);
  p.usable = s == CUBLAS_STATUS_SUCCESS && found > 0;
  cublasLtMatmulPreferenceDestroy(pref);
  return p;
}

// D[r + c*ldd] += bias[r] (column-major D, bias per row).
struct AddRowBiasF {
  TArg d, bias;
  int64_t m, ldd;
  __device__ void operator()(int64_t i) const {
    const int64_t r = i % m, c = i / m;
    d.add(c * ldd + r, bias.ld(r));
  }
};

void RunGemm(Device& dev, const Ctx& ctx, const Gemm& g) {
  if (g.m == 0 || g.n == 0) return;
  const float alpha = 1.0f;
  LtState& st = ThreadLt();
  LtPlan& p = PlanFor(st, g);
  if (p.usable) {
    if (g.bias != nullptr) {
      ANVIL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                        &g.bias, sizeof(g.bias)));
    }
    Tmp ws(dev, kLtWorkspace);
    ANVIL_CUBLAS_CHECK(cublasLtMatmul(st.handle, p.op, &alpha, g.A, p.a, g.B, p.b, &g.beta, g.D,
                                      p.d, g.D, p.d, &p.algo.algo, ws.get(), kLtWorkspace,
                                      ctx.stream));
    return;
  }
  ANVIL_CUBLAS_CHECK(
      cublasGemmEx(ctx.blas, g.ta, g.tb, static_cast<int>(g.m), static_cast<int>(g.n),
                   static_cast<int>(g.k), &alpha, g.A, CudaType(g.at), static_cast<int>(g.lda), g.B,
                   CudaType(g.bt), static_cast<int>(g.ldb), &g.beta, g.D, CudaType(g.dt),
                   static_cast<int>(g.ldd), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (g.bias != nullptr) {
    LaunchMap(ctx, g.m * g.n,
              AddRowBiasF{TArg{g.D, g.dt}, TArg{const_cast<void*>(g.bias), g.bias_t}, g.m, g.ldd});
  }
}

// ---- F32 (cuBLAS sgemm, matmul.cu) -------------------------------------------------

void LinearForwardF32(Device& d, const Ctx& ctx, const TensorView& out, const TensorView& x,
                      const TensorView& w, const TensorView& b, const LinearParams& p) {
  const int N = static_cast<int>(x.rows()), C = static_cast<int>(x.cols()),
            OC = static_cast<int>(w.rows());
  const size_t n_out = static_cast<size_t>(N) * OC;
  Tmp bias32(d, b.present() && b.dtype != DType::kF32 ? sizeof(float) * OC : 0);
  const float* bias = b.present() ? b.as<float>() : nullptr;
  if (b.present() && b.dtype != DType::kF32) {
    Convert(ctx, bias32.get(), DType::kF32, b.data, b.dtype, static_cast<size_t>(OC));
    bias = bias32.f();
  }
  if (!p.accumulate && out.dtype == DType::kF32) {
    MatmulForward(ctx, out.as<float>(), x.as<float>(), w.as<float>(), bias, N, C, OC);
    return;
  }
  Tmp tmp(d, sizeof(float) * n_out);
  MatmulForward(ctx, tmp.f(), x.as<float>(), w.as<float>(), bias, N, C, OC);
  if (p.accumulate) {
    Accumulate(ctx, out.as<float>(), tmp.f(), n_out);  // the dispatcher requires an F32 out
  } else {
    Convert(ctx, out.data, out.dtype, tmp.f(), DType::kF32, n_out);
  }
}

void LinearBackwardF32(Device& d, const Ctx& ctx, const TensorView& dx, const TensorView& dw,
                       const TensorView& db, const TensorView& dout, const TensorView& x,
                       const TensorView& w, const LinearBackwardParams& p) {
  const int N = static_cast<int>(x.rows()), C = static_cast<int>(x.cols()),
            OC = static_cast<int>(w.rows());
  const bool dx_f32 = !dx.present() || dx.dtype == DType::kF32;
  Tmp dx32(d, dx_f32 ? 0 : sizeof(float) * N * C, !dx_f32);
  float* dxp = !dx.present() ? nullptr : dx_f32 ? dx.as<float>() : dx32.f();
  if (dx.present() && dx_f32 && !p.accumulate_dx) d.Memset(dx.data, 0, dx.bytes());
  MatmulBackward(ctx, dxp, dw.present() ? dw.as<float>() : nullptr,
                 db.present() ? db.as<float>() : nullptr, dout.as<float>(), x.as<float>(),
                 w.as<float>(), N, C, OC);
  if (!dx_f32) Convert(ctx, dx.data, dx.dtype, dx32.f(), DType::kF32, static_cast<size_t>(N) * C);
}

// ---- BF16 (cuBLASLt) -----------------------------------------------------------------

void LinearForwardCuda(Device& d, const TensorView& out, const TensorView& x, const TensorView& w,
                       const TensorView& b, const LinearParams& p) {
  const Ctx& ctx = CtxOf(d);
  if (x.dtype == DType::kF32) {
    LinearForwardF32(d, ctx, out, x, w, b, p);
    return;
  }
  const int64_t N = x.rows(), C = x.cols(), OC = w.rows();
  RunGemm(d, ctx,
          Gemm{CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, w.data, w.dtype, C, x.data, x.dtype, C, out.data,
               out.dtype, OC, p.accumulate ? 1.0f : 0.0f, b.data, b.dtype});
}

struct DoutF {  // dbias column sums
  TArg dout;
  int64_t OC;
  __device__ void operator()(int64_t, int64_t r, int64_t c, float* v) const {
    v[0] = dout.ld(r * OC + c);
  }
};

void LinearBackwardCuda(Device& d, const TensorView& dx, const TensorView& dw, const TensorView& db,
                        const TensorView& dout, const TensorView& x, const TensorView& w,
                        const LinearBackwardParams& p) {
  const Ctx& ctx = CtxOf(d);
  if (x.dtype == DType::kF32) {
    LinearBackwardF32(d, ctx, dx, dw, db, dout, x, w, p);
    return;
  }
  const int64_t N = x.rows(), C = x.cols(), OC = w.rows();
  if (dx.present()) {
    RunGemm(d, ctx,
            Gemm{CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, w.data, w.dtype, C, dout.data, dout.dtype, OC,
                 dx.data, dx.dtype, C, p.accumulate_dx ? 1.0f : 0.0f, nullptr, DType::kF32});
  }
  if (dw.present()) {
    RunGemm(d, ctx,
            Gemm{CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, x.data, x.dtype, C, dout.data, dout.dtype, OC,
                 dw.data, DType::kF32, C, 1.0f, nullptr, DType::kF32});
  }
  if (db.present()) {
    ColumnReduce<1>(d, ctx, DoutF{Arg(dout), OC}, 1, N, OC, ColOuts<1>{{ColOut{Arg(db)}}});
  }
}

}  // namespace

void RegisterLinearCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<LinearForwardFn>(k, "linear.forward", &LinearForwardCuda, both);
  RegisterOp<LinearBackwardFn>(k, "linear.backward", &LinearBackwardCuda, both);
}

}  // namespace anvil::kernels::cuda

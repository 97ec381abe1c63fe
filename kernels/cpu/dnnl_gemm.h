// GEMM on oneDNN's matmul primitive, fp32 and bf16 (CPU), with run-time ISA
// dispatch (AMX, AVX512-BF16, AVX-512, AVX2) from one binary.
//
// Invariants:
//  - Accumulation is fp32 for every dtype; bf16 is only a storage format.
//  - One oneDNN primitive per distinct (M, N, K, lda, ldb, ldc, trans, dtypes,
//    bias dtype, accumulate, thread count), created on first use and cached
//    for the life of the process. Each calling thread additionally keeps its
//    own memory objects, argument list and scratchpad for that primitive, so
//    a cached call takes no lock and anvil allocates nothing. (oneDNN 2.6
//    itself still makes ~7 small heap allocations inside
//    dnnl_primitive_execute for its argument map; nothing of buffer size.)
//  - Operands are plain strided memory: trans/ld become strides, nothing is
//    reordered. gemm_bench measured format_tag::any for B plus a reorder per
//    call (B changes every step) against this on the GPT shapes: see
//    bench/kernels/gemm_bench.cc for the numbers and the choice.
//  - Where the ISA in force has no bf16 dot-product instructions (AVX-512
//    without AVX512-BF16, ONEDNN_MAX_CPU_ISA=AVX2, an AVX2-only CPU), bf16
//    operands are widened to fp32 into per-thread staging buffers and an fp32
//    primitive runs (bf16 output is narrowed back, round to nearest even).
//    A bf16 x bf16 product is exact in fp32, so this is the same arithmetic
//    (bf16 inputs, fp32 products and accumulation) in another summation
//    order. It is also the fast path there: oneDNN 2.6 does run bf16 matmul
//    on plain avx512_core, by emulation, at 0.26x of its fp32 rate (gemm_bench
//    on a Xeon, family 6 model 207, exposing AVX-512 without AVX512-BF16),
//    while widening costs O(MK + KN) conversions against O(MNK) work.
//    Bf16Path overrides the choice (benchmarks, tests).
//
// Threads. Debian's libdnnl2 (2.6.3) is built with the OpenMP CPU runtime
// (DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP in dnnl_config.h) and links libgomp,
// the same OpenMP runtime as the rest of anvil, so there is a single thread
// pool. oneDNN reads the calling thread's nthreads-var (omp_get_max_threads)
// both when it creates a primitive (its work partition is fixed then) and
// when it executes one (the team size). Gemm therefore sets
// omp_set_num_threads(nt) around creation and execution, restores the
// caller's value, and keys the cache on nt. Inside an OpenMP parallel region
// oneDNN runs its loops sequentially on the calling thread; Gemm then uses
// (and caches) a 1-thread primitive, whose partition matches.
//
// ONEDNN_MAX_CPU_ISA (environment) caps the ISA oneDNN dispatches to; it is
// read once, at oneDNN's first use.
#pragma once

#include <cstdint>
#include <string>

#include "common/dtype.h"

namespace anvil::kernels::cpu {

// C(M,N) = op(A) @ op(B) [+ bias] [+ C if accumulate], row-major.
// op(A) is (M,K): A stored (M,K) with leading dim lda, or (K,M) when trans_a.
// op(B) is (K,N): B stored (K,N) with ldb, or (N,K) when trans_b.
// a_type == b_type, each F32 or BF16; c_type F32 or BF16; accumulation is fp32.
// bias (N) of bias_type F32 or BF16, or null. accumulate=true requires c_type
// F32.
enum class Bf16Path {
  kAuto,   // kNative where the ISA in force has bf16 dot products, else kWiden
  kNative, // oneDNN's bf16 matmul (falls back to kWiden where it has none)
  kWiden,  // widen bf16 operands to fp32, fp32 matmul
};

struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const void *a = nullptr;
  DType a_type = DType::kF32;
  int64_t lda = 0;
  bool trans_a = false;
  const void *b = nullptr;
  DType b_type = DType::kF32;
  int64_t ldb = 0;
  bool trans_b = false;
  void *c = nullptr;
  DType c_type = DType::kF32;
  int64_t ldc = 0;
  const void *bias = nullptr;
  DType bias_type = DType::kF32;
  bool accumulate = false;
  Bf16Path bf16_path = Bf16Path::kAuto; // ignored for fp32 operands
};

// Runs on `nt` threads (>= 1), called from outside any OpenMP parallel
// region (from inside one it runs on the calling thread, as
// GemmSingleThread). Allocates nothing per call once the primitive for this
// shape is cached. Aborts on invalid arguments (kernels/check.h).
void Gemm(int nt, const GemmArgs &args);

// Same on the calling thread only, for use from inside an OpenMP parallel
// region (attention tiles): every thread of the team may call it at once,
// with the same or different shapes; they share the cached primitive and
// each uses its own scratchpad. Also valid outside a region (= Gemm(1, ...)).
void GemmSingleThread(const GemmArgs &args);

// The ISA oneDNN dispatches to, e.g. "avx512_core_amx", "avx512_core_bf16",
// "avx512_core", "avx2" (dnnl::get_effective_cpu_isa()).
std::string DnnlIsaName();

// True when the ISA oneDNN dispatches to has bf16 dot-product instructions
// (avx512_core_bf16, AMX): what Bf16Path::kAuto runs natively.
bool DnnlHasNativeBf16();

} // namespace anvil::kernels::cpu

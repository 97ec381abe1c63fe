// oneDNN matmul GEMM (dnnl_gemm.h): primitive cache, per-thread execution
// state, fp32 staging where the ISA has no bf16 matmul.
//
// Two cache levels. The shared one maps a PlanKey to the primitive (creating
// one JIT-compiles kernels: milliseconds) under a mutex, taken only on a
// thread's first call for a key. The per-thread one maps the same key to the
// memory objects, argument array and scratchpad that thread executes with;
// it is thread_local, so a cached call takes no lock and concurrent callers
// never share mutable state. Calls go through the C API with that prebuilt
// argument array: the C++ execute() builds a std::vector per call.
// The engine and the shared cache are deliberately leaked: thread_local
// state of the main thread is destroyed at exit and must not outlive them.
#include "kernels/cpu/dnnl_gemm.h"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {
namespace {

using dnnl::memory;

struct PlanKey {
  int64_t m, n, k, lda, ldb, ldc;
  int32_t nt;
  DType ab_type, c_type, bias_type; // bias_type is kF32 when there is no bias
  bool has_bias, trans_a, trans_b, accumulate, widen;
  bool operator==(const PlanKey &) const = default;
};

struct PlanKeyHash {
  size_t operator()(const PlanKey &k) const {
    uint64_t h = 0;
    auto mix = [&h](uint64_t v) {
      h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    };
    mix(static_cast<uint64_t>(k.m));
    mix(static_cast<uint64_t>(k.n));
    mix(static_cast<uint64_t>(k.k));
    mix(static_cast<uint64_t>(k.lda));
    mix(static_cast<uint64_t>(k.ldb));
    mix(static_cast<uint64_t>(k.ldc));
    mix(static_cast<uint64_t>(k.nt) | static_cast<uint64_t>(k.ab_type) << 32 |
        static_cast<uint64_t>(k.c_type) << 40 |
        static_cast<uint64_t>(k.bias_type) << 48 |
        static_cast<uint64_t>(k.has_bias) << 56 |
        static_cast<uint64_t>(k.trans_a) << 57 |
        static_cast<uint64_t>(k.trans_b) << 58 |
        static_cast<uint64_t>(k.accumulate) << 59 |
        static_cast<uint64_t>(k.widen) << 60);
    return static_cast<size_t>(h);
  }
};

// Immutable once built; shared by every thread that runs this key.
struct Plan {
  dnnl::matmul prim;
  memory::desc a_md, b_md, c_md, bias_md,
      scratch_md; // as the primitive sees them
  // fp32 fallback: these operands are converted through staging buffers.
  bool stage_a = false, stage_b = false, stage_c = false, stage_bias = false;
};

// One thread's handles onto a Plan. Operands that are not staged get the
// caller's pointer each call; staged ones own their buffer.
struct ThreadPlan {
  std::shared_ptr<const Plan> plan;
  memory a, b, c, bias, scratch;
  std::vector<dnnl_exec_arg_t> args;
};

struct ThreadCache {
  dnnl::stream stream;
  std::unordered_map<PlanKey, ThreadPlan, PlanKeyHash> plans;
};

struct SharedCache {
  std::mutex mu;
  std::unordered_map<PlanKey, std::shared_ptr<const Plan>, PlanKeyHash> plans;
};

[[noreturn]] void Fail(const char *what, const char *detail) {
  std::fprintf(stderr, "anvil: oneDNN GEMM: %s: %s\n", what, detail);
  std::fflush(stderr);
  std::abort();
}

void Check(dnnl_status_t s, const char *what) {
  if (s != dnnl_success)
    Fail(what, "status != dnnl_success");
}

const dnnl::engine &Engine() {
  static const dnnl::engine *engine =
      new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

SharedCache &Shared() {
  static SharedCache *cache = new SharedCache;
  return *cache;
}

ThreadCache &Local() {
  thread_local ThreadCache cache{dnnl::stream(Engine()), {}};
  return cache;
}

memory::data_type ToDnnl(DType t) {
  return t == DType::kBF16 ? memory::data_type::bf16 : memory::data_type::f32;
}

// Logical (rows, cols); element (i, j) at i*ld + j, or at j*ld + i when
// stored transposed.
memory::desc Matrix(int64_t rows, int64_t cols, memory::data_type dt,
                    int64_t ld, bool trans) {
  return memory::desc({rows, cols}, dt,
                      trans ? memory::dims{1, ld} : memory::dims{ld, 1});
}

// The stored (row-major) extent of op(A) (M,K) or op(B) (K,N).
int64_t StoredCols(int64_t rows, int64_t cols, bool trans) {
  return trans ? rows : cols;
}
int64_t StoredRows(int64_t rows, int64_t cols, bool trans) {
  return trans ? cols : rows;
}

// Builds the primitive with the caller's dtypes, or, when the key says to
// widen or this ISA has no such matmul (bf16 below AVX-512), an all-fp32 one
// fed by staging buffers.
std::shared_ptr<const Plan> MakePlan(const PlanKey &key) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (key.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  for (const bool fp32 : {key.widen, true}) {
    auto plan = std::make_shared<Plan>();
    const DType ab = fp32 ? DType::kF32 : key.ab_type;
    const DType c = fp32 ? DType::kF32 : key.c_type;
    const DType bias = fp32 ? DType::kF32 : key.bias_type;
    plan->stage_a = plan->stage_b = ab != key.ab_type;
    plan->stage_c = c != key.c_type;
    plan->stage_bias = key.has_bias && bias != key.bias_type;
    // Staged operands are dense copies of the stored matrix.
    const int64_t lda =
        plan->stage_a ? StoredCols(key.m, key.k, key.trans_a) : key.lda;
    const int64_t ldb =
        plan->stage_b ? StoredCols(key.k, key.n, key.trans_b) : key.ldb;
    const int64_t ldc = plan->stage_c ? key.n : key.ldc;
    plan->a_md = Matrix(key.m, key.k, ToDnnl(ab), lda, key.trans_a);
    plan->b_md = Matrix(key.k, key.n, ToDnnl(ab), ldb, key.trans_b);
    plan->c_md = Matrix(key.m, key.n, ToDnnl(c), ldc, false);
    if (key.has_bias)
      plan->bias_md = memory::desc({1, key.n}, ToDnnl(bias), {key.n, 1});
    try {
      const dnnl::matmul::desc desc =
          key.has_bias ? dnnl::matmul::desc(plan->a_md, plan->b_md,
                                            plan->bias_md, plan->c_md)
                       : dnnl::matmul::desc(plan->a_md, plan->b_md, plan->c_md);
      const dnnl::matmul::primitive_desc pd(desc, attr, Engine());
      plan->scratch_md = pd.scratchpad_desc();
      plan->prim = dnnl::matmul(pd);
      return plan;
    } catch (const dnnl::error &e) {
      if (fp32 || e.status != dnnl_unimplemented)
        Fail("creating the matmul primitive", e.what());
    }
  }
  Fail("creating the matmul primitive", "unreachable");
}

std::shared_ptr<const Plan> SharedPlan(const PlanKey &key) {
  SharedCache &shared = Shared();
  std::lock_guard<std::mutex> lock(shared.mu);
  auto it = shared.plans.find(key);
  if (it == shared.plans.end())
    it = shared.plans.emplace(key, MakePlan(key)).first;
  return it->second;
}

ThreadPlan MakeThreadPlan(std::shared_ptr<const Plan> plan, bool has_bias) {
  ThreadPlan tp;
  const dnnl::engine &eng = Engine();
  // DNNL_MEMORY_NONE: the caller's pointer is set per call.
  auto operand = [&eng](const memory::desc &md, bool staged) {
    return staged ? memory(md, eng) : memory(md, eng, DNNL_MEMORY_NONE);
  };
  tp.a = operand(plan->a_md, plan->stage_a);
  tp.b = operand(plan->b_md, plan->stage_b);
  tp.c = operand(plan->c_md, plan->stage_c);
  tp.args = {{DNNL_ARG_SRC, tp.a.get()},
             {DNNL_ARG_WEIGHTS, tp.b.get()},
             {DNNL_ARG_DST, tp.c.get()}};
  if (has_bias) {
    tp.bias = operand(plan->bias_md, plan->stage_bias);
    tp.args.push_back({DNNL_ARG_BIAS, tp.bias.get()});
  }
  if (plan->scratch_md.get_size() > 0) {
    tp.scratch = memory(plan->scratch_md, eng);
    tp.args.push_back({DNNL_ARG_SCRATCHPAD, tp.scratch.get()});
  }
  tp.plan = std::move(plan);
  return tp;
}

// dst (rows, cols) dense fp32 <- src bf16 with leading dimension ld.
void WidenRows(int nt, float *dst, const uint16_t *src, int64_t rows,
               int64_t cols, int64_t ld) {
  const bool par =
      nt > 1 && static_cast<size_t>(rows * cols) >= kMinParallelElems;
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int64_t r = 0; r < rows; ++r) {
    ConvertBF16ToF32(dst + r * cols, src + r * ld, static_cast<size_t>(cols));
  }
}

// dst bf16 with leading dimension ld <- src (rows, cols) dense fp32.
void NarrowRows(int nt, uint16_t *dst, int64_t ld, const float *src,
                int64_t rows, int64_t cols) {
  const bool par =
      nt > 1 && static_cast<size_t>(rows * cols) >= kMinParallelElems;
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int64_t r = 0; r < rows; ++r) {
    ConvertF32ToBF16(dst + r * ld, src + r * cols, static_cast<size_t>(cols));
  }
}

void SetHandle(const memory &m, const void *p) {
  // oneDNN takes a non-const handle for inputs too; it does not write them.
  Check(dnnl_memory_set_data_handle(m.get(), const_cast<void *>(p)),
        "set_data_handle");
}

float *StagingOf(const memory &m) {
  return static_cast<float *>(m.get_data_handle());
}

void Execute(int nt, const GemmArgs &g, const ThreadPlan &tp,
             const dnnl::stream &stream) {
  const Plan &plan = *tp.plan;
  auto input = [nt](const memory &m, bool staged, const void *p, int64_t rows,
                    int64_t cols, int64_t ld, bool trans) {
    if (!staged)
      return SetHandle(m, p);
    WidenRows(nt, StagingOf(m), static_cast<const uint16_t *>(p),
              StoredRows(rows, cols, trans), StoredCols(rows, cols, trans), ld);
  };
  input(tp.a, plan.stage_a, g.a, g.M, g.K, g.lda, g.trans_a);
  input(tp.b, plan.stage_b, g.b, g.K, g.N, g.ldb, g.trans_b);
  if (g.bias != nullptr)
    input(tp.bias, plan.stage_bias, g.bias, 1, g.N, g.N, false);
  if (!plan.stage_c)
    SetHandle(tp.c, g.c);
  Check(dnnl_primitive_execute(plan.prim.get(), stream.get(),
                               static_cast<int>(tp.args.size()),
                               tp.args.data()),
        "dnnl_primitive_execute");
  Check(dnnl_stream_wait(stream.get()), "dnnl_stream_wait");
  if (plan.stage_c) {
    NarrowRows(nt, static_cast<uint16_t *>(g.c), g.ldc, StagingOf(tp.c), g.M,
               g.N);
  }
}

bool IsGemmType(DType t) { return t == DType::kF32 || t == DType::kBF16; }

void Run(int nt, const GemmArgs &g) {
  ANVIL_KCHECK(g.M >= 1 && g.N >= 1 && g.K >= 1, "Gemm: M, N, K must be >= 1");
  ANVIL_KCHECK(g.a != nullptr && g.b != nullptr && g.c != nullptr,
               "Gemm: null operand");
  ANVIL_KCHECK(g.a_type == g.b_type && IsGemmType(g.a_type),
               "Gemm: a/b must both be F32 or BF16");
  ANVIL_KCHECK(IsGemmType(g.c_type), "Gemm: c must be F32 or BF16");
  ANVIL_KCHECK(g.bias == nullptr || IsGemmType(g.bias_type),
               "Gemm: bias must be F32 or BF16");
  ANVIL_KCHECK(!g.accumulate || g.c_type == DType::kF32,
               "Gemm: accumulate needs an F32 C");
  ANVIL_KCHECK(g.lda >= StoredCols(g.M, g.K, g.trans_a), "Gemm: lda too small");
  ANVIL_KCHECK(g.ldb >= StoredCols(g.K, g.N, g.trans_b), "Gemm: ldb too small");
  ANVIL_KCHECK(g.ldc >= g.N, "Gemm: ldc too small");
  const bool has_bias = g.bias != nullptr;
  const bool widen = g.a_type == DType::kBF16 &&
                     (g.bf16_path == Bf16Path::kWiden ||
                      (g.bf16_path == Bf16Path::kAuto && !DnnlHasNativeBf16()));
  const PlanKey key{g.M,       g.N,
                    g.K,       g.lda,
                    g.ldb,     g.ldc,
                    nt,        g.a_type,
                    g.c_type,  has_bias ? g.bias_type : DType::kF32,
                    has_bias,  g.trans_a,
                    g.trans_b, g.accumulate,
                    widen};
  // oneDNN sizes its partition at creation and its team at execution from
  // this thread's nthreads-var (dnnl_gemm.h).
  const int saved_nt = omp_get_max_threads();
  if (saved_nt != nt)
    omp_set_num_threads(nt);
  ThreadCache &local = Local();
  auto it = local.plans.find(key);
  if (it == local.plans.end()) {
    it = local.plans.emplace(key, MakeThreadPlan(SharedPlan(key), has_bias))
             .first;
  }
  Execute(nt, g, it->second, local.stream);
  if (saved_nt != nt)
    omp_set_num_threads(saved_nt);
}

} // namespace

void Gemm(int nt, const GemmArgs &args) {
  ANVIL_KCHECK(nt >= 1, "Gemm: nt must be >= 1");
  Run(omp_in_parallel() ? 1 : nt, args);
}

void GemmSingleThread(const GemmArgs &args) { Run(1, args); }

std::string DnnlIsaName() {
  using dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
  case cpu_isa::avx512_core_amx:
    return "avx512_core_amx";
  case cpu_isa::avx512_core_bf16:
    return "avx512_core_bf16";
  case cpu_isa::avx512_core_vnni:
    return "avx512_core_vnni";
  case cpu_isa::avx512_core:
    return "avx512_core";
  case cpu_isa::avx512_mic_4ops:
    return "avx512_mic_4ops";
  case cpu_isa::avx512_mic:
    return "avx512_mic";
  case cpu_isa::avx2_vnni:
    return "avx2_vnni";
  case cpu_isa::avx2:
    return "avx2";
  case cpu_isa::avx:
    return "avx";
  case cpu_isa::sse41:
    return "sse41";
  case cpu_isa::all:
    return "all";
  }
  return "unknown(" +
         std::to_string(static_cast<int>(dnnl::get_effective_cpu_isa())) + ")";
}

bool DnnlHasNativeBf16() {
  static const bool native = [] {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 ||
           isa == dnnl::cpu_isa::avx512_core_amx;
  }();
  return native;
}

} // namespace anvil::kernels::cpu

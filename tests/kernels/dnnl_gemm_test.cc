// oneDNN GEMM (kernels/cpu/dnnl_gemm.h) against a double-precision reference.
//
// Covered: the four trans combinations, odd sizes (1, 7, 33, 257), leading
// dimensions larger than the width (the padding holds NaN, so reading it
// poisons the result; C's padding holds a sentinel that must survive), bias
// in f32 and bf16, accumulate, bf16 inputs with f32 and bf16 output, 1/2/3
// threads, concurrent calls from inside an OpenMP parallel region, no
// buffer-sized allocation on a cached call, and two properties that need a
// fresh process (oneDNN reads them once): bf16 still correct with
// ONEDNN_MAX_CPU_ISA capped to AVX512_CORE (emulated bf16) and AVX2 (no bf16
// matmul: fp32 staging), and the OpenMP team oneDNN runs is exactly nt.
//
// Tolerances, with u = 2^-24 (fp32 unit roundoff), S_ij = sum_k |a_ik b_kj|
// + |bias_j| + |c0_ij| and ref_ij the exact result of the (bf16-rounded)
// inputs computed in double:
//   fp32 inputs:  |got - ref| <= 1e-5 * max|ref|
//   bf16 inputs:  |got - ref| <= e_ij = (K + 2) u S_ij  (products of bf16
//                 values are exact in fp32; any summation order of K terms
//                 plus bias and c0 rounds at most K + 2 times)
//   bf16 output:  add the final rounding: e_ij (1 + 2^-8) + 2^-8 |ref_ij|
//                 (bf16 keeps 8 significant bits; round to nearest is within
//                 2^-8 relative)
#include "kernels/cpu/dnnl_gemm.h"

#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/cpu_info.h"
#include "tests/kernels/alloc_counter.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels::cpu {
namespace {

using testing::FVec;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSentinel = 12345.0f;

// A stored row-major (rows, cols) matrix with leading dimension ld, in F32 or
// BF16. `val` holds the values the kernel sees (bf16-rounded for BF16), so the
// reference uses exactly the kernel's inputs.
struct Mat {
  int64_t rows = 0, cols = 0, ld = 0;
  DType type = DType::kF32;
  FVec val;
  std::vector<uint16_t> bf16;
  const void *data() const {
    return type == DType::kBF16 ? static_cast<const void *>(bf16.data())
                                : val.data();
  }
  void *data() {
    return type == DType::kBF16 ? static_cast<void *>(bf16.data()) : val.data();
  }
  double at(int64_t i, int64_t j) const { return val[i * ld + j]; }
};

// Random values in [-1, 1); the ld - cols padding of each row is `pad`.
Mat RandomMat(int64_t rows, int64_t cols, int64_t ld, DType type, uint32_t seed,
              float pad = kNaN) {
  Mat m{rows,
        cols,
        ld,
        type,
        testing::Random(static_cast<size_t>(rows * ld), seed),
        {}};
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = cols; j < ld; ++j)
      m.val[i * ld + j] = pad;
  }
  if (type == DType::kBF16) {
    m.bf16.resize(m.val.size());
    for (size_t i = 0; i < m.val.size(); ++i) {
      m.bf16[i] = F32ToBF16(m.val[i]);
      m.val[i] = BF16ToF32(m.bf16[i]);
    }
  }
  return m;
}

FVec Values(const Mat &m) {
  FVec v(m.val.size());
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = m.type == DType::kBF16 ? BF16ToF32(m.bf16[i]) : m.val[i];
  }
  return v;
}

struct Case {
  int64_t M, N, K;
  bool trans_a = false, trans_b = false;
  int64_t pad = 0; // added to every leading dimension
  DType ab = DType::kF32, c = DType::kF32;
  bool bias = false;
  DType bias_type = DType::kF32;
  bool accumulate = false;
  int calls = 1; // accumulate: C = c0 + calls * (op(A) op(B) + bias)
  Bf16Path path = Bf16Path::kAuto;
};

std::string Describe(const Case &cs) {
  return "M=" + std::to_string(cs.M) + " N=" + std::to_string(cs.N) +
         " K=" + std::to_string(cs.K) + " ta=" + std::to_string(cs.trans_a) +
         " tb=" + std::to_string(cs.trans_b) +
         " pad=" + std::to_string(cs.pad) +
         " ab=" + std::string(DTypeName(cs.ab)) +
         " c=" + std::string(DTypeName(cs.c)) +
         (cs.bias ? " bias=" + std::string(DTypeName(cs.bias_type)) : "") +
         (cs.accumulate ? " accumulate" : "") +
         (cs.path == Bf16Path::kNative  ? " native"
          : cs.path == Bf16Path::kWiden ? " widen"
                                        : "");
}

enum class Caller { kGemm, kSingleThread };

// Runs one case with nt threads and checks it; fails the current test.
void RunCase(int nt, const Case &cs, uint32_t seed = 1,
             Caller caller = Caller::kGemm) {
  const int64_t a_rows = cs.trans_a ? cs.K : cs.M,
                a_cols = cs.trans_a ? cs.M : cs.K;
  const int64_t b_rows = cs.trans_b ? cs.N : cs.K,
                b_cols = cs.trans_b ? cs.K : cs.N;
  const Mat a = RandomMat(a_rows, a_cols, a_cols + cs.pad, cs.ab, seed);
  const Mat b = RandomMat(b_rows, b_cols, b_cols + cs.pad, cs.ab, seed + 1);
  const Mat bias = RandomMat(1, cs.N, cs.N, cs.bias_type, seed + 2);
  // c0 is accumulated into, or must be overwritten; its padding must survive.
  Mat c = RandomMat(cs.M, cs.N, cs.N + cs.pad, cs.c, seed + 3, kSentinel);
  const Mat c0 = c;

  GemmArgs g;
  g.M = cs.M, g.N = cs.N, g.K = cs.K;
  g.a = a.data(), g.a_type = cs.ab, g.lda = a.ld, g.trans_a = cs.trans_a;
  g.b = b.data(), g.b_type = cs.ab, g.ldb = b.ld, g.trans_b = cs.trans_b;
  g.c = c.data(), g.c_type = cs.c, g.ldc = c.ld;
  g.bias = cs.bias ? bias.data() : nullptr, g.bias_type = cs.bias_type;
  g.accumulate = cs.accumulate;
  g.bf16_path = cs.path;
  for (int r = 0; r < cs.calls; ++r) {
    if (caller == Caller::kGemm) {
      Gemm(nt, g);
    } else {
      GemmSingleThread(g);
    }
  }
  const FVec got = Values(c);

  const double u = std::ldexp(1.0, -24), h = std::ldexp(1.0, -8);
  const double calls = cs.calls;
  std::vector<double> ref(static_cast<size_t>(cs.M * cs.N)), mag(ref.size());
  double max_ref = 0;
  for (int64_t i = 0; i < cs.M; ++i) {
    for (int64_t j = 0; j < cs.N; ++j) {
      double s = 0, sa = 0;
      for (int64_t k = 0; k < cs.K; ++k) {
        const double p = (cs.trans_a ? a.at(k, i) : a.at(i, k)) *
                         (cs.trans_b ? b.at(j, k) : b.at(k, j));
        s += p;
        sa += std::abs(p);
      }
      if (cs.bias)
        s += bias.at(0, j), sa += std::abs(bias.at(0, j));
      s *= calls, sa *= calls;
      if (cs.accumulate)
        s += c0.at(i, j), sa += std::abs(c0.at(i, j));
      ref[i * cs.N + j] = s;
      mag[i * cs.N + j] = sa;
      max_ref = std::max(max_ref, std::abs(s));
    }
  }
  double worst = 0;
  int64_t wi = -1, wj = -1;
  for (int64_t i = 0; i < cs.M; ++i) {
    for (int64_t j = 0; j < c.ld; ++j) {
      const double g_ij = got[i * c.ld + j];
      if (j >= cs.N) {
        ASSERT_EQ(g_ij, c0.at(i, j)) << "C padding overwritten at " << i << ","
                                     << j << " " << Describe(cs);
        continue;
      }
      const double r = ref[i * cs.N + j];
      double tol = cs.ab == DType::kF32
                       ? 1e-5 * max_ref
                       : (cs.K + 2) * calls * u * mag[i * cs.N + j];
      if (cs.c == DType::kBF16)
        tol = tol * (1 + h) + h * std::abs(r);
      // Exact zeros (K = 1 products can be 0) still need a nonzero scale.
      tol = std::max(tol, 1e-30);
      const double excess = std::abs(g_ij - r) / tol;
      if (!(excess <= worst)) { // also catches NaN
        worst = excess, wi = i, wj = j;
        if (std::isnan(excess))
          break;
      }
    }
  }
  EXPECT_LE(worst, 1.0) << "worst at (" << wi << "," << wj << "): got "
                        << got[wi * c.ld + wj] << " want "
                        << ref[wi * cs.N + wj] << " (" << worst
                        << "x tolerance) " << Describe(cs) << " nt=" << nt;
}

struct Size {
  int64_t M, N, K;
};
// Every one of 1, 7, 33, 257 in each role.
const Size kSizes[] = {{1, 1, 1},    {7, 33, 257}, {257, 7, 33}, {33, 257, 7},
                       {1, 257, 33}, {257, 1, 7},  {33, 7, 1}};

class DnnlGemmTest : public ::testing::TestWithParam<int> {
protected:
  int nt() const { return GetParam(); }
};

TEST_P(DnnlGemmTest, Fp32AllTransposesOddSizesPaddedLeadingDims) {
  for (const Size &s : kSizes) {
    for (int t = 0; t < 4; ++t) {
      for (int64_t pad : {0, 3}) {
        Case cs{s.M, s.N, s.K};
        cs.trans_a = t & 1, cs.trans_b = t & 2, cs.pad = pad;
        RunCase(nt(), cs);
      }
    }
  }
}

TEST_P(DnnlGemmTest, Fp32BiasF32AndBf16) {
  for (const DType bt : {DType::kF32, DType::kBF16}) {
    for (int t = 0; t < 4; ++t) {
      Case cs{33, 257, 7};
      cs.trans_a = t & 1, cs.trans_b = t & 2, cs.pad = t, cs.bias = true,
      cs.bias_type = bt;
      RunCase(nt(), cs);
    }
    Case one{1, 7, 1};
    one.bias = true, one.bias_type = bt;
    RunCase(nt(), one);
  }
}

TEST_P(DnnlGemmTest, Fp32AccumulateAddsToC) {
  for (const bool bias : {false, true}) {
    for (int t = 0; t < 4; ++t) {
      Case cs{257, 33, 7};
      cs.trans_a = t & 1, cs.trans_b = t & 2, cs.pad = 2, cs.bias = bias,
      cs.accumulate = true;
      cs.calls = 2;
      RunCase(nt(), cs);
    }
  }
}

TEST_P(DnnlGemmTest, Fp32LargerThanOneBlock) {
  Case cs{300, 520, 700};
  cs.trans_b = true, cs.bias = true, cs.accumulate = true;
  RunCase(nt(), cs);
}

// Both bf16 paths (Bf16Path): oneDNN's bf16 matmul and fp32 on widened
// operands; kAuto is one of them.
constexpr Bf16Path kBf16Paths[] = {Bf16Path::kNative, Bf16Path::kWiden};

TEST_P(DnnlGemmTest, Bf16InputsFp32AndBf16Output) {
  for (const Bf16Path path : kBf16Paths) {
    for (const DType out : {DType::kF32, DType::kBF16}) {
      for (const Size &s : kSizes) {
        for (int t = 0; t < 4; ++t) {
          Case cs{s.M, s.N, s.K};
          cs.trans_a = t & 1, cs.trans_b = t & 2, cs.pad = t == 3 ? 5 : 0;
          cs.ab = DType::kBF16, cs.c = out, cs.path = path;
          RunCase(nt(), cs);
        }
      }
    }
  }
}

TEST_P(DnnlGemmTest, Bf16BiasAndAccumulate) {
  for (const Bf16Path path : kBf16Paths) {
    for (const DType bt : {DType::kF32, DType::kBF16}) {
      for (int t = 0; t < 4; ++t) {
        Case cs{257, 33, 257};
        cs.trans_a = t & 1, cs.trans_b = t & 2, cs.pad = 1,
        cs.ab = DType::kBF16;
        cs.bias = true, cs.bias_type = bt, cs.path = path;
        RunCase(nt(), cs); // f32 output, overwritten
        cs.accumulate = true, cs.calls = 2;
        RunCase(nt(), cs);
        cs.accumulate = false, cs.calls = 1, cs.c = DType::kBF16;
        RunCase(nt(), cs);
      }
    }
  }
}

TEST_P(DnnlGemmTest, ConcurrentCallsInsideAParallelRegion) {
  // Each thread of the team runs its own problem (two shapes, different data)
  // through GemmSingleThread, and Gemm(nt>1) from inside the region runs on
  // the calling thread; every result is checked.
#pragma omp parallel num_threads(nt())
  {
    const int tid = omp_get_thread_num();
    for (int r = 0; r < 3; ++r) {
      Case cs = tid % 2 == 0 ? Case{64, 96, 33} : Case{33, 7, 257};
      cs.trans_b = true, cs.ab = r == 1 ? DType::kBF16 : DType::kF32,
      cs.bias = r == 2;
      RunCase(1, cs, 100 + 10 * tid + r, Caller::kSingleThread);
      RunCase(2, cs, 200 + 10 * tid + r, Caller::kGemm);
    }
  }
}

TEST_P(DnnlGemmTest, CachedCallMakesNoBufferSizedAllocation) {
  const int64_t M = 256, N = 384, K = 512;
  for (const DType t : {DType::kF32, DType::kBF16}) {
    const Mat a = RandomMat(M, K, K, t, 1), b = RandomMat(N, K, K, t, 2);
    const Mat bias = RandomMat(1, N, N, DType::kF32, 3);
    Mat c = RandomMat(M, N, N, DType::kF32, 4);
    GemmArgs g;
    g.M = M, g.N = N, g.K = K;
    g.a = a.data(), g.a_type = t, g.lda = K;
    g.b = b.data(), g.b_type = t, g.ldb = K, g.trans_b = true;
    g.c = c.data(), g.ldc = N, g.bias = bias.data(), g.accumulate = true;
    Gemm(nt(), g); // creates and caches
    testing::ArmAllocCounter();
    Gemm(nt(), g);
    const testing::AllocCount n = testing::DisarmAllocCounter();
    // anvil allocates nothing; oneDNN 2.6's execute builds a small argument
    // map (7 nodes here). Creating a primitive, a scratchpad or a staging
    // buffer would show up as far more, or far larger, allocations.
    EXPECT_LE(n.calls, 12) << DTypeName(t);
    EXPECT_LT(n.bytes, 2048) << DTypeName(t);
    std::printf("cached %s call: %ld allocations, %ld bytes\n",
                std::string(DTypeName(t)).c_str(), static_cast<long>(n.calls),
                static_cast<long>(n.bytes));
  }
}

// kAuto runs bf16 natively exactly where the CPU has bf16 dot products
// (unless ONEDNN_MAX_CPU_ISA caps them away: DnnlGemmChild).
TEST(DnnlGemm, NativeBf16FollowsTheCpu) {
  if (getenv("ONEDNN_MAX_CPU_ISA") != nullptr)
    GTEST_SKIP() << "ISA capped by the environment";
  EXPECT_EQ(DnnlHasNativeBf16(), CpuHasAvx512Bf16() || CpuHasAmxBf16())
      << DnnlIsaName();
  std::printf("bf16 GEMM path on this CPU: %s (oneDNN %s)\n",
              DnnlHasNativeBf16() ? "native" : "widened to fp32",
              DnnlIsaName().c_str());
}

TEST(DnnlGemm, IsaNameIsKnown) {
  const std::string isa = DnnlIsaName();
  EXPECT_EQ(isa.find("unknown"), std::string::npos) << isa;
  if (CpuHasAvx512Subsets()) {
    EXPECT_EQ(isa.rfind("avx512_core", 0), 0u) << isa;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, DnnlGemmTest, ::testing::Values(1, 2, 3),
                         testing::ThreadsParamName);

// ---- Properties that need a fresh process -------------------------------
// The parent re-executes this binary with a gtest filter selecting one
// DnnlGemmChild test and ANVIL_DNNL_GEMM_CHILD=1; run directly, those tests
// skip.

bool InChild() { return getenv("ANVIL_DNNL_GEMM_CHILD") != nullptr; }

struct ChildResult {
  int exit_code = -1;
  std::string output;
};

ChildResult RunChild(const std::string &env, const std::string &test) {
  const std::string self =
      std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string cmd = "env ANVIL_DNNL_GEMM_CHILD=1 " + env + " '" + self +
                          "' --gtest_filter=DnnlGemmChild." + test + " 2>&1";
  ChildResult r;
  FILE *p = popen(cmd.c_str(), "r");
  if (p == nullptr)
    return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
    r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void ExpectChildPassed(const ChildResult &r, const std::string &marker) {
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[  PASSED  ] 1 test"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("SKIPPED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(marker), std::string::npos) << r.output;
}

TEST(DnnlGemmChild, Bf16UnderIsaCap) {
  if (!InChild())
    GTEST_SKIP() << "run by DnnlGemm.Bf16CorrectWithIsaCapped";
  const char *want = getenv("ANVIL_DNNL_EXPECT_ISA");
  ASSERT_NE(want, nullptr);
  const std::string isa = DnnlIsaName();
  ASSERT_EQ(isa, want);
  EXPECT_FALSE(DnnlHasNativeBf16());
  std::printf("child isa: %s\n", isa.c_str());
  for (const int nt : {1, 2}) {
    for (int t = 0; t < 4; ++t) {
      for (const DType out : {DType::kF32, DType::kBF16}) {
        Case cs{33, 257, 129};
        cs.trans_a = t & 1, cs.trans_b = t & 2, cs.pad = t,
        cs.ab = DType::kBF16, cs.c = out;
        cs.bias = t >= 2, cs.bias_type = t == 3 ? DType::kBF16 : DType::kF32;
        RunCase(nt, cs);
      }
      Case acc{7, 33, 257};
      acc.trans_a = t & 1, acc.trans_b = t & 2, acc.ab = DType::kBF16,
      acc.accumulate = true;
      acc.bias = true, acc.bias_type = DType::kBF16, acc.calls = 2;
      RunCase(nt, acc);
      acc.path = Bf16Path::kNative; // emulated on avx512_core, fp32 below
      RunCase(nt, acc);
    }
  }
  Case f32{33, 65, 129}; // and fp32 is unaffected
  f32.trans_b = true, f32.bias = true, f32.accumulate = true;
  RunCase(2, f32);
}

TEST(DnnlGemm, Bf16CorrectWithIsaCapped) {
  struct Cap {
    const char *env;
    const char *isa;
    bool available;
  };
  __builtin_cpu_init();
  const Cap caps[] = {{"AVX512_CORE", "avx512_core", CpuHasAvx512Subsets()},
                      {"AVX2", "avx2", __builtin_cpu_supports("avx2") != 0}};
  for (const Cap &cap : caps) {
    if (!cap.available)
      continue;
    SCOPED_TRACE(cap.env);
    ExpectChildPassed(RunChild(std::string("ONEDNN_MAX_CPU_ISA=") + cap.env +
                                   " ANVIL_DNNL_EXPECT_ISA=" + cap.isa,
                               "Bf16UnderIsaCap"),
                      std::string("child isa: ") + cap.isa);
  }
}

int ThreadCount() {
  int n = 0;
  if (DIR *d = opendir("/proc/self/task")) {
    while (dirent *e = readdir(d))
      n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

TEST(DnnlGemmChild, TeamIsExactlyNt) {
  if (!InChild())
    GTEST_SKIP() << "run by DnnlGemm.RunsExactlyNtThreads";
  // libgomp keeps a team's threads alive for reuse, so the process's thread
  // count after a call shows the largest team used so far.
  const int64_t n = 768;
  const FVec a = testing::Random(n * n, 1), b = testing::Random(n * n, 2);
  FVec c(n * n);
  GemmArgs g;
  g.M = g.N = g.K = n;
  g.a = a.data(), g.lda = n, g.b = b.data(), g.ldb = n, g.trans_b = true;
  g.c = c.data(), g.ldc = n;
  const int before = ThreadCount();
  Gemm(1, g);
  EXPECT_EQ(ThreadCount(), before) << "Gemm(1) started threads";
  // 3 > the cores of the 2-core development machine: nt wins over the core
  // count.
  Gemm(3, g);
  EXPECT_EQ(ThreadCount(), before + 2) << "Gemm(3) did not run a team of 3";
  g.a_type = g.b_type = DType::kBF16;
  std::vector<uint16_t> a16(a.size()), b16(b.size());
  ConvertF32ToBF16(a16.data(), a.data(), a.size());
  ConvertF32ToBF16(b16.data(), b.data(), b.size());
  g.a = a16.data(), g.b = b16.data();
  Gemm(4, g);
  EXPECT_EQ(ThreadCount(), before + 3)
      << "bf16 Gemm(4) did not run a team of 4";
  std::printf("child threads: %d -> %d\n", before, ThreadCount());
}

TEST(DnnlGemm, RunsExactlyNtThreads) {
  ExpectChildPassed(RunChild("OMP_DYNAMIC=false", "TeamIsExactlyNt"),
                    "child threads:");
}

} // namespace
} // namespace anvil::kernels::cpu

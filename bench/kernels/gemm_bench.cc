// gemm_bench: OpenBLAS sgemm against oneDNN (fp32; bf16 in, fp32 out; bf16
// in and out) on the GEMMs of a GPT training step, at 1 and 2 threads; the
// cost of the fp32 -> bf16 conversions those bf16 GEMMs need; and the weight
// layout experiment behind kernels/cpu/dnnl_gemm.cc (plain strided operands
// against format_tag::any for B plus a reorder on every call).
//
// Shapes (llm.c's linear layer, weight W (OC,C), N = B*T rows):
//   fwd   out(N,OC)  = inp(N,C) . W(OC,C)^T       GEMM M=N  N=OC K=C
//   dinp  dinp(N,C)  = dout(N,OC) . W(OC,C)       GEMM M=N  N=C  K=OC
//   dW    dW(OC,C)  += dout^T(OC,N) . inp(N,C)    GEMM M=OC N=C  K=N
// dW accumulates in every column except bf16-out, where oneDNN's accumulate
// needs an fp32 C: there dW is overwritten (marked *).
//
// Timing: each rep runs all variants of a row back to back (interleaved), so
// load from other jobs on a shared machine hits all of them alike; a row
// reports the median of --reps timed calls after two warm-up calls each.
// At 1 thread every variant runs on the calling thread (oneDNN, the OpenMP
// OpenBLAS and Convert start no team), so by default it is timed with that
// thread's CPU clock, which time-sharing with other jobs does not inflate;
// with more threads the wall clock is the only honest measure.
// Ratios are speed ratios against OpenBLAS fp32 measured in the same run
// (> 1: faster than OpenBLAS).
#include <omp.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/dnnl_gemm.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/peak.h"

ABSL_FLAG(std::string, threads, "1,2", "comma list of thread counts");
ABSL_FLAG(int, reps, 7,
          "timed reps per row, GPT-small shapes (the median is reported)");
ABSL_FLAG(int, large_reps, 5, "timed reps per row, the N=8192 C=768 shapes");
ABSL_FLAG(bool, large, true, "also run the N=8192, C=768 shapes");
ABSL_FLAG(bool, layout, true,
          "run the weight-layout experiment (any + reorder vs plain)");
ABSL_FLAG(std::string, bf16_path, "auto",
          "bf16 GEMM path (dnnl_gemm.h Bf16Path): auto | native (oneDNN bf16 "
          "matmul, emulated "
          "without AVX512-BF16) | widen (fp32 matmul on widened operands)");
ABSL_FLAG(bool, cpu_time_at_1, true,
          "at 1 thread, time with the calling thread's CPU clock instead of "
          "the wall clock");

namespace anvil::kernels {
namespace {

using Fn = std::function<void()>;

// The clock of the current section: thread CPU time or wall time.
bool g_thread_clock = false;

double NowMs() {
  if (g_thread_clock) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void UseClockFor(int nt) {
  g_thread_clock = nt == 1 && absl::GetFlag(FLAGS_cpu_time_at_1);
}
const char *ClockName() {
  return g_thread_clock ? "thread CPU clock" : "wall clock";
}

struct Stat {
  double median, min; // ms
};

// Median and minimum ms of each fn over `reps` interleaved rounds, after 2
// warm-up calls each.
std::vector<Stat> TimeInterleaved(const std::vector<Fn> &fns, int reps) {
  for (int w = 0; w < 2; ++w) {
    for (const Fn &f : fns)
      f();
  }
  std::vector<std::vector<double>> t(fns.size());
  for (int r = 0; r < reps; ++r) {
    for (size_t i = 0; i < fns.size(); ++i) {
      const double t0 = NowMs();
      fns[i]();
      t[i].push_back(NowMs() - t0);
    }
  }
  std::vector<Stat> stats;
  for (auto &v : t) {
    std::sort(v.begin(), v.end());
    const size_t h = v.size() / 2;
    stats.push_back({v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]), v[0]});
  }
  return stats;
}

std::string CpuInfoField(const std::string &key) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos)
        return line.substr(colon + 2);
    }
  }
  return "?";
}

bool HasFlag(const std::string &flags, const std::string &flag) {
  std::istringstream in(flags);
  std::string f;
  while (in >> f) {
    if (f == flag)
      return true;
  }
  return false;
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::vector<float> Filled(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto &e : v) {
    x = x * 1664525u + 1013904223u;
    e = static_cast<float>(x >> 8) * (1.0f / 16777216.0f) - 0.5f;
  }
  return v;
}

std::vector<uint16_t> ToBf16(const std::vector<float> &v) {
  std::vector<uint16_t> h(v.size());
  cpu::Convert(1, h.data(), DType::kBF16, v.data(), DType::kF32, v.size());
  return h;
}

struct Lin {
  const char *name;
  int64_t c, oc;
};

// One linear layer's operands in fp32 and bf16.
struct Layer {
  int64_t n, c, oc;
  std::vector<float> inp, w, dout, out, dinp, dw;
  std::vector<uint16_t> inp16, w16, dout16, out16, dinp16, dw16;
  Layer(int64_t n_, int64_t c_, int64_t oc_)
      : n(n_), c(c_), oc(oc_), inp(Filled(n * c, 1)), w(Filled(oc * c, 2)),
        dout(Filled(n * oc, 3)), out(n * oc), dinp(n * c),
        dw(Filled(oc * c, 4)), inp16(ToBf16(inp)), w16(ToBf16(w)),
        dout16(ToBf16(dout)), out16(n * oc), dinp16(n * c), dw16(oc * c) {}
};

enum class Op { kFwd, kDinp, kDw };
const char *OpName(Op op) {
  return op == Op::kFwd ? "fwd" : op == Op::kDinp ? "dinp" : "dW";
}

cpu::Bf16Path Bf16PathFlag() {
  const std::string p = absl::GetFlag(FLAGS_bf16_path);
  return p == "native"  ? cpu::Bf16Path::kNative
         : p == "widen" ? cpu::Bf16Path::kWiden
                        : cpu::Bf16Path::kAuto;
}

// The GEMM of `op` on `l`: a/b bf16 when ab_bf16, c bf16 when c_bf16.
cpu::GemmArgs Args(Layer &l, Op op, bool ab_bf16, bool c_bf16) {
  cpu::GemmArgs g;
  const DType ab = ab_bf16 ? DType::kBF16 : DType::kF32;
  g.a_type = g.b_type = ab;
  g.c_type = c_bf16 ? DType::kBF16 : DType::kF32;
  g.bf16_path = Bf16PathFlag();
  auto pick = [ab_bf16](std::vector<float> &f,
                        std::vector<uint16_t> &h) -> void * {
    return ab_bf16 ? static_cast<void *>(h.data()) : f.data();
  };
  auto out = [c_bf16](std::vector<float> &f,
                      std::vector<uint16_t> &h) -> void * {
    return c_bf16 ? static_cast<void *>(h.data()) : f.data();
  };
  switch (op) {
  case Op::kFwd:
    g.M = l.n, g.N = l.oc, g.K = l.c;
    g.a = pick(l.inp, l.inp16), g.lda = l.c;
    g.b = pick(l.w, l.w16), g.ldb = l.c, g.trans_b = true;
    g.c = out(l.out, l.out16), g.ldc = l.oc;
    break;
  case Op::kDinp:
    g.M = l.n, g.N = l.c, g.K = l.oc;
    g.a = pick(l.dout, l.dout16), g.lda = l.oc;
    g.b = pick(l.w, l.w16), g.ldb = l.c;
    g.c = out(l.dinp, l.dinp16), g.ldc = l.c;
    break;
  case Op::kDw:
    g.M = l.oc, g.N = l.c, g.K = l.n;
    g.a = pick(l.dout, l.dout16), g.lda = l.oc, g.trans_a = true;
    g.b = pick(l.inp, l.inp16), g.ldb = l.c;
    g.c = out(l.dw, l.dw16), g.ldc = l.c;
    g.accumulate = !c_bf16;
    break;
  }
  return g;
}

Fn BlasCall(int nt, const cpu::GemmArgs &g) {
  return [nt, g] {
    cpu::SetBlasThreads(nt);
    cpu::Sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
               g.trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(g.M),
               static_cast<int>(g.N), static_cast<int>(g.K), 1.0f,
               static_cast<const float *>(g.a), static_cast<int>(g.lda),
               static_cast<const float *>(g.b), static_cast<int>(g.ldb),
               g.accumulate ? 1.0f : 0.0f, static_cast<float *>(g.c),
               static_cast<int>(g.ldc));
  };
}

Fn DnnlCall(int nt, const cpu::GemmArgs &g) {
  return [nt, g] { cpu::Gemm(nt, g); };
}

constexpr int kVariants =
    4; // OpenBLAS fp32, oneDNN fp32, bf16->fp32, bf16->bf16

void RunSet(const char *title, int64_t n, const std::vector<Lin> &lins, int nt,
            int reps) {
  UseClockFor(nt);
  std::printf("\n== %s, threads=%d (median of %d, %s; ms per call, GFLOP/s, "
              "speed vs OpenBLAS)\n",
              title, nt, reps, ClockName());
  std::printf("%-8s %-4s %5s %5s %5s | %8s %8s %8s %8s | %6s %6s %6s %6s | %6s "
              "%6s %6s\n",
              "layer", "op", "M", "N", "K", "blas", "dnnl32", "bf16", "bf16o",
              "blas", "dnnl32", "bf16", "bf16o", "d32/bl", "bf/bl", "bfo/bl");
  double total[kVariants] = {0, 0, 0, 0}, best[kVariants] = {0, 0, 0, 0};
  double total_gflop = 0, total_cvt_w = 0, total_bf16 = 0;
  for (const Lin &lin : lins) {
    Layer l(n, lin.c, lin.oc);
    double layer_bf16 = 0;
    for (const Op op : {Op::kFwd, Op::kDinp, Op::kDw}) {
      const cpu::GemmArgs f32 = Args(l, op, false, false);
      const std::vector<Stat> st =
          TimeInterleaved({BlasCall(nt, f32), DnnlCall(nt, f32),
                           DnnlCall(nt, Args(l, op, true, false)),
                           DnnlCall(nt, Args(l, op, true, true))},
                          reps);
      double ms[kVariants];
      for (int v = 0; v < kVariants; ++v) {
        ms[v] = st[v].median;
        total[v] += ms[v];
        best[v] += st[v].min;
      }
      const double gflop = 2.0 * f32.M * f32.N * f32.K * 1e-9;
      total_gflop += gflop;
      layer_bf16 += ms[2];
      std::printf("%-8s %-4s %5ld %5ld %5ld | %8.3f %8.3f %8.3f %7.3f%s | "
                  "%6.1f %6.1f %6.1f %6.1f | %6.2f "
                  "%6.2f %6.2f\n",
                  lin.name, OpName(op), static_cast<long>(f32.M),
                  static_cast<long>(f32.N), static_cast<long>(f32.K), ms[0],
                  ms[1], ms[2], ms[3], op == Op::kDw ? "*" : " ",
                  gflop / ms[0] * 1e3, gflop / ms[1] * 1e3, gflop / ms[2] * 1e3,
                  gflop / ms[3] * 1e3, ms[0] / ms[1], ms[0] / ms[2],
                  ms[0] / ms[3]);
    }
    // What a bf16 path pays first: the weight (every step), the activations.
    const std::vector<Stat> cvt = TimeInterleaved(
        {[&] {
           cpu::Convert(nt, l.w16.data(), DType::kBF16, l.w.data(), DType::kF32,
                        l.w.size());
         },
         [&] {
           cpu::Convert(nt, l.inp16.data(), DType::kBF16, l.inp.data(),
                        DType::kF32, l.inp.size());
         },
         [&] {
           cpu::Convert(nt, l.dout16.data(), DType::kBF16, l.dout.data(),
                        DType::kF32, l.dout.size());
         }},
        reps);
    total_cvt_w += cvt[0].median;
    total_bf16 += layer_bf16;
    std::printf("%-8s cvt  fp32->bf16 W(%ld,%ld) %.3f ms = %.1f%% of this "
                "layer's 3 bf16 GEMMs (%.3f ms);"
                " inp(N,C) %.3f ms, dout(N,OC) %.3f ms\n",
                lin.name, static_cast<long>(l.oc), static_cast<long>(l.c),
                cvt[0].median, 100.0 * cvt[0].median / layer_bf16, layer_bf16,
                cvt[1].median, cvt[2].median);
  }
  std::printf("%-8s sum  %.1f GFLOP | ms: blas %.2f dnnl32 %.2f bf16 %.2f "
              "bf16o %.2f | GFLOP/s: %.1f "
              "%.1f %.1f %.1f | vs blas: dnnl32 %.2fx bf16 %.2fx bf16o %.2fx | "
              "W cvt %.2f ms = %.1f%% of "
              "bf16\n",
              "total", total_gflop, total[0], total[1], total[2], total[3],
              total_gflop / total[0] * 1e3, total_gflop / total[1] * 1e3,
              total_gflop / total[2] * 1e3, total_gflop / total[3] * 1e3,
              total[0] / total[1], total[0] / total[2], total[0] / total[3],
              total_cvt_w, 100.0 * total_cvt_w / total_bf16);
  // Noise from other jobs only ever adds time: the sum of per-row minimums
  // is the less disturbed estimate when the machine is loaded.
  std::printf("%-8s min  ms: blas %.2f dnnl32 %.2f bf16 %.2f bf16o %.2f | vs "
              "blas: dnnl32 %.2fx bf16 "
              "%.2fx bf16o %.2fx (sum of per-row minimums)\n",
              "total", best[0], best[1], best[2], best[3], best[0] / best[1],
              best[0] / best[2], best[0] / best[3]);
}

// ---- Weight layout: plain strided B vs format_tag::any B + per-call reorder
// (raw oneDNN, library scratchpad, both the same way).
struct LayoutTimes {
  Stat plain, any_total, any_gemm, reorder;
  bool blocked; // oneDNN chose a layout other than the plain one
};

LayoutTimes TimeLayout(int nt, const cpu::GemmArgs &g, int reps) {
  using dnnl::memory;
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(nt);
  dnnl::stream s(eng);
  const auto dt = g.a_type == DType::kBF16 ? memory::data_type::bf16
                                           : memory::data_type::f32;
  auto strided = [](int64_t r, int64_t c, memory::data_type t, int64_t ld,
                    bool trans) {
    return memory::desc({r, c}, t,
                        trans ? memory::dims{1, ld} : memory::dims{ld, 1});
  };
  const memory::desc a = strided(g.M, g.K, dt, g.lda, g.trans_a);
  const memory::desc b = strided(g.K, g.N, dt, g.ldb, g.trans_b);
  const memory::desc c =
      strided(g.M, g.N, memory::data_type::f32, g.ldc, false);
  const memory::desc b_any({g.K, g.N}, dt, memory::format_tag::any);
  dnnl::primitive_attr attr;
  if (g.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::primitive_desc pd_plain(dnnl::matmul::desc(a, b, c), attr,
                                              eng);
  const dnnl::matmul::primitive_desc pd_any(dnnl::matmul::desc(a, b_any, c),
                                            attr, eng);
  const dnnl::matmul plain(pd_plain), any(pd_any);
  memory ma(a, eng, const_cast<void *>(g.a)),
      mb(b, eng, const_cast<void *>(g.b)), mc(c, eng, g.c),
      mb_blocked(pd_any.weights_desc(), eng);
  const dnnl::reorder reorder(mb, mb_blocked);
  auto run_plain = [&] {
    plain.execute(
        s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    s.wait();
  };
  auto run_reorder = [&] {
    reorder.execute(s, mb, mb_blocked);
    s.wait();
  };
  auto run_any = [&] {
    any.execute(s, {{DNNL_ARG_SRC, ma},
                    {DNNL_ARG_WEIGHTS, mb_blocked},
                    {DNNL_ARG_DST, mc}});
    s.wait();
  };
  const std::vector<Stat> st = TimeInterleaved(
      {run_plain, [&] { run_reorder(), run_any(); }, run_any, run_reorder},
      reps);
  omp_set_num_threads(saved);
  return {st[0], st[1], st[2], st[3], pd_any.weights_desc() != b};
}

void RunLayout(int64_t n, const std::vector<Lin> &lins, int nt, int reps) {
  UseClockFor(nt);
  std::printf("\n== weight layout, threads=%d: plain strided B vs "
              "format_tag::any B + reorder every call "
              "(ms, median of %d, %s; speed ratio plain/(any+reorder) of "
              "medians and of minimums)\n",
              nt, reps, ClockName());
  std::printf("%-8s %-4s %-4s | %8s %10s %8s %8s | %6s %6s\n", "layer", "op",
              "type", "plain", "any+reord", "any", "reorder", "median", "min");
  for (const bool bf16 : {false, true}) {
    double plain = 0, any = 0, plain_min = 0, any_min = 0;
    for (const Lin &lin : lins) {
      Layer l(n, lin.c, lin.oc);
      for (const Op op : {Op::kFwd, Op::kDinp, Op::kDw}) {
        const LayoutTimes t = TimeLayout(nt, Args(l, op, bf16, false), reps);
        plain += t.plain.median, any += t.any_total.median;
        plain_min += t.plain.min, any_min += t.any_total.min;
        std::printf(
            "%-8s %-4s %-4s | %8.3f %10.3f %8.3f %8.3f | %6.3f %6.3f%s\n",
            lin.name, OpName(op), bf16 ? "bf16" : "f32", t.plain.median,
            t.any_total.median, t.any_gemm.median, t.reorder.median,
            t.plain.median / t.any_total.median, t.plain.min / t.any_total.min,
            t.blocked ? "" : " (any chose the plain layout)");
      }
    }
    std::printf("%-8s %-4s %-4s | %8.3f %10.3f %8s %8s | %6.3f %6.3f (min sums "
                "%.3f %.3f)\n",
                "total", "", bf16 ? "bf16" : "f32", plain, any, "", "",
                plain / any, plain_min / any_min, plain_min, any_min);
  }
}

int Main() {
  std::vector<int> threads;
  for (const absl::string_view t :
       absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    int v = 0;
    if (!absl::SimpleAtoi(t, &v) || v < 1) {
      std::fprintf(stderr, "gemm_bench: bad --threads entry '%s'\n",
                   std::string(t).c_str());
      return 1;
    }
    threads.push_back(v);
  }
  const int reps = absl::GetFlag(FLAGS_reps),
            large_reps = absl::GetFlag(FLAGS_large_reps);
  const std::string flags = CpuInfoField("flags");
  std::printf(
      "cpu: %s (family %s model %s; avx512_bf16 %s, amx_bf16 %s; %d cpus)\n",
      CpuInfoField("model name").c_str(), CpuInfoField("cpu family").c_str(),
      CpuInfoField("model").c_str(),
      HasFlag(flags, "avx512_bf16") ? "yes" : "no",
      HasFlag(flags, "amx_bf16") ? "yes" : "no", omp_get_num_procs());
  const dnnl_version_t *v = dnnl_version();
  std::printf("oneDNN %d.%d.%d isa: %s | OpenBLAS core: %s (%s)\n", v->major,
              v->minor, v->patch, cpu::DnnlIsaName().c_str(),
              cpu::BlasCoreName().c_str(), cpu::BlasLibraryPath().c_str());
  const std::string path = absl::GetFlag(FLAGS_bf16_path);
  if (path != "auto" && path != "native" && path != "widen") {
    std::fprintf(
        stderr,
        "gemm_bench: --bf16_path must be auto, native or widen, not '%s'\n",
        path.c_str());
    return 2;
  }
  std::printf("bf16 GEMM path: %s (auto: %s on this CPU)\n", path.c_str(),
              cpu::DnnlHasNativeBf16() ? "native" : "widen");
  std::printf("load average at start: %s\n", LoadAverage().c_str());
  for (const int nt : threads) {
    std::printf("peaks 2048^3, threads=%d: OpenBLAS sgemm %.1f, oneDNN fp32 "
                "%.1f, bf16 (auto path) %.1f "
                "GFLOP/s\n",
                nt, MeasureSgemmPeakGflops(nt), MeasureDnnlSgemmPeakGflops(nt),
                MeasureBf16GemmPeakGflops(nt));
  }

  const std::vector<Lin> small = {{"qkv", 384, 1152},
                                  {"attproj", 384, 384},
                                  {"fc", 384, 1536},
                                  {"fcproj", 1536, 384},
                                  {"head", 384, 256}};
  const std::vector<Lin> large = {
      {"qkv", 768, 2304}, {"attproj", 768, 768}, {"fc", 768, 3072}};
  for (const int nt : threads) {
    RunSet("GPT-small N=2048 (B8 x T256), C=384", 2048, small, nt, reps);
  }
  if (absl::GetFlag(FLAGS_large)) {
    for (const int nt : threads)
      RunSet("N=8192, C=768", 8192, large, nt, large_reps);
  }
  if (absl::GetFlag(FLAGS_layout)) {
    for (const int nt : threads)
      RunLayout(2048, small, nt, reps);
  }
  std::printf("\nload average at end: %s\n", LoadAverage().c_str());
  return 0;
}

} // namespace
} // namespace anvil::kernels

int main(int argc, char **argv) {
  absl::ParseCommandLine(argc, argv);
  return anvil::kernels::Main();
}

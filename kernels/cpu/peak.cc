// Matmul peak measurements (peak.h).
#include "kernels/cpu/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/dnnl_gemm.h"

namespace anvil::kernels {
namespace {

int Threads(int num_threads) { return num_threads > 0 ? num_threads : omp_get_num_procs(); }

// Deterministic operands; the values do not matter for the rate.
void Fill(std::vector<float>& a, std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i % 13) * 0.01f;
    b[i] = static_cast<float>(i % 7) * 0.02f;
  }
}

// Best time of `repeats` runs after one warm-up, as GFLOP/s of an n^3 GEMM.
double BestRate(int n, int repeats, const std::function<void()>& gemm) {
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, s);
  }
  return 2.0 * n * static_cast<double>(n) * n / best * 1e-9;
}

double DnnlPeak(int num_threads, int n, int repeats, DType ab) {
  const int nt = Threads(num_threads);
  const size_t nn = static_cast<size_t>(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  Fill(a, b);
  std::vector<uint16_t> a16, b16;
  cpu::GemmArgs g;
  g.M = g.N = g.K = n;
  g.a = a.data(), g.b = b.data();
  if (ab == DType::kBF16) {
    a16.resize(nn), b16.resize(nn);
    ConvertF32ToBF16(a16.data(), a.data(), nn);
    ConvertF32ToBF16(b16.data(), b.data(), nn);
    g.a = a16.data(), g.b = b16.data();
  }
  g.a_type = g.b_type = ab;
  g.lda = g.ldb = g.ldc = n;
  g.trans_b = true;
  g.c = c.data();
  return BestRate(n, repeats, [&] { cpu::Gemm(nt, g); });
}

}  // namespace

double MeasureSgemmPeakGflops(int num_threads, int n, int repeats) {
  cpu::SetBlasThreads(Threads(num_threads));
  const size_t nn = static_cast<size_t>(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  Fill(a, b);
  return BestRate(n, repeats, [&] {
    cpu::Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
               0.0f, c.data(), n);
  });
}

double MeasureDnnlSgemmPeakGflops(int num_threads, int n, int repeats) {
  return DnnlPeak(num_threads, n, repeats, DType::kF32);
}

double MeasureBf16GemmPeakGflops(int num_threads, int n, int repeats) {
  return DnnlPeak(num_threads, n, repeats, DType::kBF16);
}

}  // namespace anvil::kernels

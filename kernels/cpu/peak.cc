// sgemm peak measurement (peak.h).
#include "kernels/cpu/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels/cpu/blas.h"

namespace anvil::kernels {

double MeasureSgemmPeakGflops(int num_threads, int n, int repeats) {
  const int nt = num_threads > 0 ? num_threads : omp_get_num_procs();
  cpu::SetBlasThreads(nt);
  const size_t nn = static_cast<size_t>(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  for (size_t i = 0; i < nn; ++i) {
    a[i] = static_cast<float>(i % 13) * 0.01f;
    b[i] = static_cast<float>(i % 7) * 0.02f;
  }
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {  // the first run warms up
    const auto t0 = std::chrono::steady_clock::now();
    cpu::Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, s);
  }
  return 2.0 * n * static_cast<double>(nn) / best * 1e-9;
}

}  // namespace anvil::kernels

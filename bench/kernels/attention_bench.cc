// attention_bench: today's CPU attention (attention.cc, saves the (B,NH,T,T)
// probabilities) against flash attention (flash_attention.cc) in fp32 and
// bf16, forward and backward, on packed causal qkv at the GPT standard shape
// (B=8 T=256 NH=6 HS=64) and at a long T (1024 by default).
//
// GFLOP/s count the same useful work for every kernel (causal: half of the
// full Q K^T and P V; backward twice the forward), so the columns compare
// times; flash backward executes more (it recomputes Q K^T). Each time is the
// minimum over --repeats, next to the sgemm peak measured in the same run and
// the speed-up over today's kernel.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/common/timing.h"
#include "absl/flags/parse.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/peak.h"

ABSL_FLAG(int, threads, 2, "OpenMP/BLAS threads");
ABSL_FLAG(int, B, 8, "batch size");
ABSL_FLAG(int, T, 256, "sequence length of the standard shape");
ABSL_FLAG(int, long_T, 1024, "sequence length of the second shape (0 skips it)");
ABSL_FLAG(int, H, 6, "heads");
ABSL_FLAG(int, HS, 64, "head size");
ABSL_FLAG(int, repeats, 10, "timed repeats per kernel (the minimum is reported)");
ABSL_FLAG(bool, cpu_time, false,
          "time with the calling thread's CPU clock (needs --threads=1; robust on a machine "
          "shared with other jobs)");

namespace anvil::kernels {
namespace {

double TimeMs(const std::function<void()>& fn, int repeats, bool cpu_time) {
  return bench::BestMs(fn, repeats, cpu_time);
}

// The peak the way --cpu_time times the kernels (one thread, thread CPU
// clock), so that the %peak column is not skewed by other jobs on the machine.
double CpuTimeSgemmPeakGflops() {
  constexpr int n = 2048;
  std::vector<float> a(size_t{n} * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  cpu::SetBlasThreads(1);
  const double ms = TimeMs(
      [&] {
        cpu::Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                   n, 0.0f, c.data(), n);
      },
      4, /*cpu_time=*/true);
  return 2.0 * n * n * n / (ms * 1e-3) * 1e-9;
}

void RunShape(int nt, int B, int T, int NH, int HS, int reps, bool cpu_time, double peak) {
  const int C = NH * HS, C3 = 3 * C;
  const size_t n_qkv = static_cast<size_t>(B) * T * C3, n_out = static_cast<size_t>(B) * T * C;
  std::vector<float> qkv(n_qkv), dout(n_out), out(n_out), dqkv(n_qkv, 0.0f);
  for (size_t i = 0; i < n_qkv; ++i)
    qkv[i] = static_cast<float>((i * 2654435761u) % 1000) * 2e-3f - 1.0f;
  for (size_t i = 0; i < n_out; ++i)
    dout[i] = static_cast<float>((i * 40503u) % 1000) * 2e-3f - 1.0f;
  std::vector<float> att(static_cast<size_t>(B) * NH * T * T), datt(att.size());
  std::vector<float> lse(static_cast<size_t>(B) * NH * T);
  std::vector<uint16_t> qkv16(n_qkv), dout16(n_out), out16(n_out), dqkv16(n_qkv, 0);
  ConvertF32ToBF16(qkv16.data(), qkv.data(), n_qkv);
  ConvertF32ToBF16(dout16.data(), dout.data(), n_out);

  cpu::AttentionDims d;
  d.B = B, d.T = T, d.NH = NH, d.NKV = NH, d.HS = HS, d.causal = true;
  auto part = [&](void* base, int elem, int off) {
    return cpu::HeadsView{static_cast<char*>(base) + static_cast<int64_t>(off) * elem,
                          int64_t{T} * C3, C3, HS};
  };
  auto flat = [&](void* base) { return cpu::HeadsView{base, int64_t{T} * C, C, HS}; };
  auto flash_fwd = [&](DType dt, void* x, void* o) {
    const int e = static_cast<int>(DTypeSize(dt));
    cpu::FlashAttentionForward(nt, d, dt, flat(o), part(x, e, 0), part(x, e, C), part(x, e, 2 * C),
                               lse.data());
  };
  auto flash_bwd = [&](DType dt, void* dx, void* g, void* x, void* o) {
    const int e = static_cast<int>(DTypeSize(dt));
    cpu::FlashAttentionBackward(nt, d, dt, part(dx, e, 0), part(dx, e, C), part(dx, e, 2 * C),
                                flat(g), part(x, e, 0), part(x, e, C), part(x, e, 2 * C), flat(o),
                                lse.data());
  };

  const double fwd_gflop = 4.0 * B * NH * static_cast<double>(T) * T * HS * 1e-9 / 2;  // causal
  struct Row {
    const char* name;
    double ms;
    double gflop;
  };
  std::vector<Row> rows;
  rows.push_back(
      {"fwd  today",
       TimeMs([&] { cpu::AttentionForward(nt, out.data(), att.data(), qkv.data(), B, T, C, NH); },
              reps, cpu_time),
       fwd_gflop});
  rows.push_back({"fwd  flash fp32",
                  TimeMs([&] { flash_fwd(DType::kF32, qkv.data(), out.data()); }, reps, cpu_time),
                  fwd_gflop});
  rows.push_back(
      {"fwd  flash bf16",
       TimeMs([&] { flash_fwd(DType::kBF16, qkv16.data(), out16.data()); }, reps, cpu_time),
       fwd_gflop});
  // Backward of today's kernel needs its saved probabilities; flash needs lse
  // and out of its own forward (the lse of the last forward call).
  cpu::AttentionForward(nt, out.data(), att.data(), qkv.data(), B, T, C, NH);
  rows.push_back({"bwd  today",
                  TimeMs(
                      [&] {
                        cpu::AttentionBackward(nt, dqkv.data(), datt.data(), dout.data(),
                                               qkv.data(), att.data(), B, T, C, NH);
                      },
                      reps, cpu_time),
                  2 * fwd_gflop});
  flash_fwd(DType::kF32, qkv.data(), out.data());
  rows.push_back(
      {"bwd  flash fp32",
       TimeMs([&] { flash_bwd(DType::kF32, dqkv.data(), dout.data(), qkv.data(), out.data()); },
              reps, cpu_time),
       2 * fwd_gflop});
  flash_fwd(DType::kBF16, qkv16.data(), out16.data());
  rows.push_back({"bwd  flash bf16",
                  TimeMs(
                      [&] {
                        flash_bwd(DType::kBF16, dqkv16.data(), dout16.data(), qkv16.data(),
                                  out16.data());
                      },
                      reps, cpu_time),
                  2 * fwd_gflop});

  std::printf("B=%d T=%d NH=%d HS=%d causal, threads=%d (today's saved P: %.0f MB)\n", B, T, NH, HS,
              nt, att.size() * 4.0 / (1 << 20));
  std::printf("  %-16s %10s %10s %8s %12s\n", "kernel", "ms/call", "GFLOP/s", "%peak", "vs today");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const double today = rows[i < 3 ? 0 : 3].ms;
    const double gf = r.gflop / (r.ms * 1e-3);
    std::printf("  %-16s %10.3f %10.1f %7.1f%% %11.2fx\n", r.name, r.ms, gf, 100.0 * gf / peak,
                today / r.ms);
  }
}

int Main() {
  const int nt = absl::GetFlag(FLAGS_threads), reps = absl::GetFlag(FLAGS_repeats);
  const bool cpu_time = absl::GetFlag(FLAGS_cpu_time);
  if (cpu_time && nt != 1) {
    std::fprintf(stderr, "attention_bench: --cpu_time needs --threads=1\n");
    return 1;
  }
  const double peak = cpu_time ? CpuTimeSgemmPeakGflops() : MeasureSgemmPeakGflops(nt);
  std::printf("attention_bench: threads=%d, sgemm peak (2048^3): %.1f GFLOP/s%s\n", nt, peak,
              cpu_time ? " (peak and kernels timed by the thread CPU clock)" : "");
  const int B = absl::GetFlag(FLAGS_B), NH = absl::GetFlag(FLAGS_H), HS = absl::GetFlag(FLAGS_HS);
  RunShape(nt, B, absl::GetFlag(FLAGS_T), NH, HS, reps, cpu_time, peak);
  if (absl::GetFlag(FLAGS_long_T) > 0) {
    RunShape(nt, B, absl::GetFlag(FLAGS_long_T), NH, HS, std::max(1, reps / 2), cpu_time, peak);
  }
  return 0;
}

}  // namespace
}  // namespace anvil::kernels

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return anvil::kernels::Main();
}

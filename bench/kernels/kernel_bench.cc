// kernel_bench: times every CPU op at the shapes one training step of the
// standard config uses (L=6, H=6, C=384, T=256, V=256, B=8 by default) and
// prints ms per call, GFLOP/s and the fraction of the sgemm peak measured in
// the same run. The last lines add the ops up the way the GPT step calls
// them, giving the kernel-only step time and MFU to compare with the full
// trainer's figure (which adds nothing but host overhead).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "kernels/device.h"
#include "tests/kernels/f32_ops.h"
#include "kernels/cpu/peak.h"

ABSL_FLAG(int, threads, 2, "OpenMP/BLAS threads");
ABSL_FLAG(int, L, 6, "layers (for the step total)");
ABSL_FLAG(int, H, 6, "heads");
ABSL_FLAG(int, C, 384, "channels");
ABSL_FLAG(int, T, 256, "sequence length");
ABSL_FLAG(int, V, 256, "vocabulary");
ABSL_FLAG(int, B, 8, "batch size");
ABSL_FLAG(int, repeats, 10, "timed repeats per op (the minimum is reported)");
ABSL_FLAG(bool, cpu_time, false,
          "time with the calling thread's CPU clock instead of the wall clock (needs "
          "--threads=1; robust on a machine shared with other jobs)");

namespace anvil::kernels {
namespace {

double NowMs(bool cpu_time) {
  if (cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double TimeMs(const std::function<void()>& fn, int repeats, bool cpu_time) {
  fn();  // warm-up: page faults, BLAS buffers
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = NowMs(cpu_time);
    fn();
    best = std::min(best, NowMs(cpu_time) - t0);
  }
  return best;
}

struct Row {
  std::string name;
  double ms;
  double gflop;  // 0 for memory-bound ops
  int per_step;  // calls per training step
};

int Main() {
  const int nt = absl::GetFlag(FLAGS_threads), L = absl::GetFlag(FLAGS_L),
            NH = absl::GetFlag(FLAGS_H), C = absl::GetFlag(FLAGS_C), T = absl::GetFlag(FLAGS_T),
            V = absl::GetFlag(FLAGS_V), B = absl::GetFlag(FLAGS_B),
            reps = absl::GetFlag(FLAGS_repeats);
  const bool cpu_time = absl::GetFlag(FLAGS_cpu_time);
  if (cpu_time && nt != 1) {
    std::fprintf(stderr, "kernel_bench: --cpu_time needs --threads=1\n");
    return 1;
  }
  const int N = B * T;
  const size_t NC = static_cast<size_t>(N) * C;

  const double peak = MeasureSgemmPeakGflops(nt);
  std::printf("kernel_bench: B=%d T=%d C=%d NH=%d V=%d L=%d threads=%d\n", B, T, C, NH, V, L, nt);
  std::printf("sgemm peak (2048^3): %.1f GFLOP/s%s\n\n", peak,
              cpu_time ? " (wall clock; ops below timed by thread CPU clock)" : "");

  auto dev = MakeCpuDevice(nt);
  testing::Ops ops(*dev);
  testing::Ops* be = &ops;
  std::vector<void*> owned;
  auto buf = [&](size_t n) {
    auto* p = static_cast<float*>(dev->Alloc(n * sizeof(float)));
    for (size_t i = 0; i < n; ++i)
      p[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    owned.push_back(p);
    return p;
  };
  auto* tokens = static_cast<int32_t*>(dev->Alloc(sizeof(int32_t) * N));
  for (int i = 0; i < N; ++i) tokens[i] = (i * 7) % V;

  float* x = buf(NC);
  float* y = buf(NC);
  float* big = buf(4 * NC);
  float* big2 = buf(4 * NC);
  float* big3 = buf(4 * NC);
  float* qkv = buf(3 * NC);
  float* dqkv = buf(3 * NC);
  float* att = buf(static_cast<size_t>(B) * NH * T * T);
  float* datt = buf(static_cast<size_t>(B) * NH * T * T);
  float* w = buf(16 * static_cast<size_t>(C) * C);
  float* dw = buf(16 * static_cast<size_t>(C) * C);
  float* bias = buf(4 * C);
  float* dbias = buf(4 * C);
  float* mean = buf(N);
  float* rstd = buf(N);
  float* logits = buf(static_cast<size_t>(N) * V);
  float* probs = buf(static_cast<size_t>(N) * V);
  float* losses = buf(N);
  float* wte = buf(static_cast<size_t>(V) * C);
  float* wpe = buf(static_cast<size_t>(T) * C);
  const size_t P = static_cast<size_t>(L) * 12 * C * C + static_cast<size_t>(V + T) * C;
  float* params = buf(P);
  float* grads = buf(P);
  float* m = buf(P);
  float* v = buf(P);
  // Keep the softmax well-conditioned: a real att buffer, probabilities.
  be->AttentionForward(y, att, qkv, B, T, C, NH);
  be->SoftmaxCrossEntropyForward(losses, probs, logits, tokens, N, V);

  std::vector<Row> rows;
  auto add = [&](std::string name, double gflop, int per_step, const std::function<void()>& fn) {
    rows.push_back({std::move(name), TimeMs(fn, reps, cpu_time), gflop, per_step});
  };
  auto mm_flops = [&](int c, int oc) { return 2.0 * N * c * oc * 1e-9; };
  struct Lin {
    const char* name;
    int c, oc;
  };
  const Lin lins[] = {{"qkv", C, 3 * C}, {"attproj", C, C}, {"fc", C, 4 * C}, {"fcproj", 4 * C, C}};
  const double att_fwd = 4.0 * B * NH * static_cast<double>(T) * T * (C / NH) * 1e-9 / 2;  // causal

  add("encoder fwd", 0, 1, [&] { be->EncoderForward(x, tokens, wte, wpe, B, T, C); });
  add("encoder bwd", 0, 1, [&] { be->EncoderBackward(wte, wpe, x, tokens, B, T, C); });
  add("layernorm fwd", 0, 2 * L + 1,
      [&] { be->LayerNormForward(y, mean, rstd, x, bias, bias, N, C); });
  add("layernorm bwd", 0, 2 * L + 1,
      [&] { be->LayerNormBackward(y, dbias, dbias, x, x, bias, mean, rstd, N, C); });
  for (const Lin& l : lins) {
    add(std::string("matmul fwd ") + l.name, mm_flops(l.c, l.oc), L,
        [&] { be->MatmulForward(big, big2, w, bias, N, l.c, l.oc); });
    add(std::string("matmul bwd ") + l.name, 2 * mm_flops(l.c, l.oc), L,
        [&] { be->MatmulBackward(big3, dw, dbias, big, big2, w, N, l.c, l.oc); });
  }
  add("matmul fwd lm_head", mm_flops(C, V), 1,
      [&] { be->MatmulForward(logits, x, wte, nullptr, N, C, V); });
  add("matmul bwd lm_head", 2 * mm_flops(C, V), 1,
      [&] { be->MatmulBackward(y, dw, nullptr, probs, x, wte, N, C, V); });
  add("attention fwd", att_fwd, L, [&] { be->AttentionForward(y, att, qkv, B, T, C, NH); });
  add("attention bwd", 2 * att_fwd, L,
      [&] { be->AttentionBackward(dqkv, datt, y, qkv, att, B, T, C, NH); });
  add("gelu fwd", 0, L, [&] { be->GeluForward(big2, big, 4 * NC); });
  add("gelu bwd", 0, L, [&] { be->GeluBackward(big3, big, big2, 4 * NC); });
  add("accumulate (N,C)", 0, 2 * L, [&] { be->Accumulate(y, x, NC); });
  add("softmax+xent fwd", 0, 1,
      [&] { be->SoftmaxCrossEntropyForward(losses, probs, logits, tokens, N, V); });
  add("softmax+xent bwd", 0, 1,
      [&] { be->SoftmaxCrossEntropyBackward(logits, probs, tokens, 1e-3f, N, V); });
  // The model zeroes these scratch buffers in backward (see models/gpt).
  add("memset (N,4C)", 0, 2 * L, [&] { dev->Memset(big3, 0, 4 * NC * sizeof(float)); });
  add("memset (N,C)", 0, 3 * L + 2, [&] { dev->Memset(y, 0, NC * sizeof(float)); });
  add("memset (N,3C)", 0, L, [&] { dev->Memset(dqkv, 0, 3 * NC * sizeof(float)); });
  add("memset grads", 0, 1, [&] { dev->Memset(grads, 0, P * sizeof(float)); });
  AdamWParams ap;
  add("adamw (all params)", 0, 1, [&] { be->AdamW(params, grads, m, v, P, ap); });
  add("squared norm (grads)", 0, 1, [&] { be->SquaredNorm(grads, P); });
  add("convert f32->bf16 (params)", 0, 0,
      [&] { be->Convert(m, DType::kBF16, params, DType::kF32, P); });

  std::printf("%-28s %10s %10s %8s %6s %10s\n", "op", "ms/call", "GFLOP/s", "%peak", "calls",
              "ms/step");
  double step_ms = 0, step_flop = 0, mm_ms = 0;
  for (const Row& r : rows) {
    const double ms_step = r.ms * r.per_step;
    step_ms += ms_step;
    step_flop += r.gflop * r.per_step;
    if (r.gflop > 0) mm_ms += ms_step;
    if (r.gflop > 0) {
      const double gf = r.gflop / (r.ms * 1e-3);
      std::printf("%-28s %10.3f %10.1f %7.1f%% %6d %10.2f\n", r.name.c_str(), r.ms, gf,
                  100.0 * gf / peak, r.per_step, ms_step);
    } else {
      std::printf("%-28s %10.3f %10s %8s %6d %10.2f\n", r.name.c_str(), r.ms, "-", "-", r.per_step,
                  ms_step);
    }
  }
  // The MFU convention of the trainer: 6 * params + 6 * L * C * T per token.
  const double model_flop =
      (6.0 * static_cast<double>(L * 12.0 * C * C + static_cast<double>(V + T) * C) +
       6.0 * L * C * T) *
      N * 1e-9;
  std::printf("\nstep (sum of ops above): %.1f ms, of which matmul+attention %.1f ms (%.0f%%)\n",
              step_ms, mm_ms, 100.0 * mm_ms / step_ms);
  std::printf("kernel FLOPs executed %.1f GFLOP, model FLOPs (6N + 6LCT per token) %.1f GFLOP\n",
              step_flop, model_flop);
  std::printf(
      "kernel-only step: %.1f GFLOP/s = %.1f%% of sgemm peak (model FLOPs), %.0f tokens/s\n",
      model_flop / (step_ms * 1e-3), 100.0 * model_flop / (step_ms * 1e-3) / peak,
      N / (step_ms * 1e-3));
  for (void* p : owned) dev->Free(p);
  dev->Free(tokens);
  return 0;
}

}  // namespace
}  // namespace anvil::kernels

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return anvil::kernels::Main();
}

// kernel_bench: times every op family at the shapes one GPT training step of
// the standard config uses (L=6, H=6, C=384, T=256, V=256, B=8 by default),
// in the compute dtype given (--dtype fp32|bf16: the dtypes the GPT gives
// each operand, e.g. fp32 residual stream and statistics under bf16), and
// prints ms per call, GFLOP/s and the fraction of that dtype's GEMM peak
// measured in the same run (sgemm for fp32, oneDNN bf16 GEMM for bf16). The
// last lines add the ops up the way the GPT step calls them, giving the
// kernel-only step time and MFU to compare with the full trainer's figure.
// --cold evicts the caches before every timed call (a 128 MB write), the way
// a training step meets its operands after the other layers' ops: the
// difference between the warm and the cold sums is what cache misses cost.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/common/timing.h"
#include "absl/flags/parse.h"
#include "kernels/device.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/cpu/peak.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/loss.h"
#include "kernels/ops/norm.h"
#include "kernels/ops/optim.h"

ABSL_FLAG(int, threads, 2, "OpenMP/BLAS threads");
ABSL_FLAG(std::string, dtype, "fp32", "compute dtype: fp32 | bf16");
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
ABSL_FLAG(bool, cold, false,
          "evict the caches (write 128 MB) before every timed call, as a training step "
          "meets its operands");

namespace anvil::kernels {
namespace {

double TimeMs(const std::function<void()>& fn, int repeats, bool cpu_time) {
  if (!absl::GetFlag(FLAGS_cold)) return bench::BestMs(fn, repeats, cpu_time);
  // Larger than any last-level cache of the CPUs we run on (32 MB per CCD on
  // Zen 4/5, up to 105 MB on a whole Sapphire Rapids socket, of which a
  // 2-vCPU slice sees far less); written, so dirty operands are flushed too.
  static std::vector<char> flush(size_t{128} << 20);
  static char pass = 0;
  return bench::BestMs(fn, repeats, cpu_time, [] {
    ++pass;
    std::fill(flush.begin(), flush.end(), pass);
  });
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
  const std::string dtype = absl::GetFlag(FLAGS_dtype);
  if (dtype != "fp32" && dtype != "bf16") {
    std::fprintf(stderr, "kernel_bench: --dtype must be fp32 or bf16\n");
    return 1;
  }
  const DType cd = dtype == "bf16" ? DType::kBF16 : DType::kF32;
  const int64_t N = int64_t{B} * T, HS = C / NH;

  const double peak = cd == DType::kBF16 ? MeasureBf16GemmPeakGflops(nt) : MeasureSgemmPeakGflops(nt);
  std::printf("kernel_bench: B=%d T=%d C=%d NH=%d V=%d L=%d threads=%d dtype=%s%s\n", B, T, C, NH,
              V, L, nt, dtype.c_str(), absl::GetFlag(FLAGS_cold) ? " (cold caches)" : "");
  std::printf("cpu %s; %s\n", cpu::CpuModelName().c_str(), cpu::CpuIsaSummary().c_str());
  std::printf("%s peak (2048^3): %.1f GFLOP/s%s\n\n", cd == DType::kBF16 ? "bf16 gemm" : "sgemm",
              peak, cpu_time ? " (wall clock; ops below timed by thread CPU clock)" : "");

  auto dev = MakeCpuDevice(nt);
  Device& d = *dev;
  std::vector<void*> owned;
  // A buffer of n elements of dtype t holding deterministic values spread
  // over [-half_width, half_width) (small by default).
  auto buf = [&](size_t n, DType t, float half_width = 0.5f) {
    std::vector<float> host(n);
    for (size_t i = 0; i < n; ++i) {
      host[i] = (static_cast<float>((i * 2654435761u) % 1000) * 2e-3f - 1.0f) * half_width;
    }
    void* p = d.Alloc(n * DTypeSize(t));
    Convert(d, Flat(p, t, n), Flat(host.data(), n));
    owned.push_back(p);
    return p;
  };
  auto f32 = [&](size_t n) { return static_cast<float*>(buf(n, DType::kF32)); };
  auto act = [&](size_t n) { return buf(n, cd); };
  auto* tokens = static_cast<int32_t*>(d.Alloc(sizeof(int32_t) * N));
  for (int64_t i = 0; i < N; ++i) tokens[i] = static_cast<int32_t>((i * 7) % V);
  auto A = [&](void* p, std::initializer_list<int64_t> shape) { return View(p, cd, shape); };
  auto F = [&](float* p, std::initializer_list<int64_t> shape) { return View(p, shape); };

  float* resid = f32(N * C);  // fp32 residual stream
  float* dres = f32(N * C);
  void* x = act(N * C);
  void* y = act(N * C);
  void* big = act(4 * N * C);
  void* big2 = act(4 * N * C);
  void* qkv = act(3 * N * C);
  void* dqkv = act(3 * N * C);
  void* w = act(16 * int64_t{C} * C);
  float* dw = f32(16 * int64_t{C} * C);
  void* bias = act(4 * C);
  float* dbias = f32(4 * C);
  float *mean = f32(N), *rstd = f32(N), *lse = f32(int64_t{B} * NH * T);
  float* logits = f32(N * V);
  float* probs = f32(N * V);
  float* losses = f32(N);
  void* dlogits = act(N * V);
  void* wte = act(int64_t{V} * C);
  void* wpe = act(int64_t{T} * C);
  float* dwte = f32(int64_t{V} * C);
  float* dwpe = f32(int64_t{T} * C);
  const size_t P = static_cast<size_t>(L) * 12 * C * C + static_cast<size_t>(V + T) * C;
  float* params = f32(P);
  float* grads = f32(P);
  float* m = f32(P);
  float* v = f32(P);
  void* params16 = buf(P, DType::kBF16);
  const TensorView ids = View(tokens, {B, T});
  const QkvViews q = PackedQkv(qkv, cd, B, T, C, NH);
  const QkvViews dq = PackedQkv(dqkv, cd, B, T, C, NH);
  const TensorView atty = A(y, {B, T, NH, HS});
  // Real probabilities and row statistics for the backward ops.
  AttentionForward(d, atty, F(lse, {B, NH, T}), q.q, q.k, q.v);
  SoftmaxCrossEntropyForward(d, F(losses, {N}), F(probs, {N, V}), F(logits, {N, V}), View(tokens, {N}));

  std::vector<Row> rows;
  auto add = [&](std::string name, double gflop, int per_step, const std::function<void()>& fn) {
    rows.push_back({std::move(name), TimeMs(fn, reps, cpu_time), gflop, per_step});
  };
  auto mm_flops = [&](int c, int oc) { return 2.0 * N * c * oc * 1e-9; };
  struct Lin {
    const char* name;
    int c, oc;
    bool residual;  // output accumulates into the fp32 residual stream
  };
  const Lin lins[] = {{"qkv", C, 3 * C, false},
                      {"attproj", C, C, true},
                      {"fc", C, 4 * C, false},
                      {"fcproj", 4 * C, C, true}};
  add("encoder fwd", 0, 1, [&] { EmbeddingForward(d, F(resid, {B, T, C}), ids, A(wte, {V, C}), A(wpe, {T, C})); });
  add("encoder bwd", 0, 1, [&] { EmbeddingBackward(d, F(dwte, {V, C}), F(dwpe, {T, C}), F(dres, {B, T, C}), ids); });
  add("layernorm fwd", 0, 2 * L + 1, [&] {
    LayerNormForward(d, A(x, {N, C}), F(mean, {N}), F(rstd, {N}), F(resid, {N, C}), A(bias, {C}), A(bias, {C}));
  });
  add("layernorm bwd", 0, 2 * L + 1, [&] {
    LayerNormBackward(d, F(dres, {N, C}), F(dbias, {C}), F(dbias, {C}), A(x, {N, C}), F(resid, {N, C}),
                      A(bias, {C}), F(mean, {N}), F(rstd, {N}));
  });
  for (const Lin& l : lins) {
    const TensorView in = A(big, {N, l.c});
    const TensorView out = l.residual ? F(resid, {N, l.oc}) : A(big2, {N, l.oc});
    const TensorView wv = A(w, {l.oc, l.c});
    add(std::string("matmul fwd ") + l.name, mm_flops(l.c, l.oc), L,
        [&, in, out, wv, l] { LinearForward(d, out, in, wv, A(bias, {l.oc})); });
    const TensorView dout = A(big2, {N, l.oc});
    add(std::string("matmul bwd ") + l.name, 2 * mm_flops(l.c, l.oc), L, [&, in, dout, wv, l] {
      LinearBackward(d, A(big, {N, l.c}), F(dw, {l.oc, l.c}), F(dbias, {l.oc}), dout, in, wv,
                     {.accumulate_dx = false});
    });
  }
  add("matmul fwd lm_head", mm_flops(C, V), 1, [&] { LinearForward(d, F(logits, {N, V}), A(x, {N, C}), A(wte, {V, C}), {}); });
  add("matmul bwd lm_head", 2 * mm_flops(C, V), 1, [&] {
    LinearBackward(d, A(y, {N, C}), F(dwte, {V, C}), {}, A(dlogits, {N, V}), A(x, {N, C}), A(wte, {V, C}),
                   {.accumulate_dx = false});
  });
  // Causal attention: QK^T and PV over the lower triangle (forward), twice
  // that for dP, dV, dQ, dK (backward).
  const double att_fwd = 2.0 * 2.0 * B * NH * (T * (T + 1) / 2.0) * HS * 1e-9;
  add("attention fwd", att_fwd, L, [&] { AttentionForward(d, atty, F(lse, {B, NH, T}), q.q, q.k, q.v); });
  add("attention bwd", 2 * att_fwd, L, [&] {
    AttentionBackward(d, dq.q, dq.k, dq.v, A(x, {B, T, NH, HS}), q.q, q.k, q.v, atty, F(lse, {B, NH, T}));
  });
  // GELU's input spread like pre-activations (not the zeros `big` may hold
  // by now: a divide by 1 + exp(0) runs faster than one on real values).
  void* gelu_x = buf(4 * N * C, cd, 3.0f);
  add("gelu fwd", 0, L, [&] { GeluForward(d, A(big2, {4 * N * C}), A(gelu_x, {4 * N * C})); });
  add("gelu bwd", 0, L, [&] {
    GeluBackward(d, A(big2, {4 * N * C}), A(gelu_x, {4 * N * C}), A(big, {4 * N * C}));
  });
  add("accumulate (N,C) fp32", 0, 2 * L, [&] { Accumulate(d, F(resid, {N * C}), F(dres, {N * C})); });
  if (cd != DType::kF32) {
    add("convert dres -> bf16", 0, 2 * L, [&] { Convert(d, A(x, {N * C}), F(dres, {N * C})); });
  }
  add("softmax+xent fwd", 0, 1, [&] {
    SoftmaxCrossEntropyForward(d, F(losses, {N}), F(probs, {N, V}), F(logits, {N, V}), View(tokens, {N}));
  });
  add("softmax+xent bwd", 0, 1, [&] {
    SoftmaxCrossEntropyBackward(d, A(dlogits, {N, V}), F(probs, {N, V}), View(tokens, {N}), 0.001f);
  });
  add("memset (N,4C)", 0, L, [&] { d.Memset(big2, 0, 4 * N * C * DTypeSize(cd)); });
  add("memset (N,3C)", 0, L, [&] { d.Memset(dqkv, 0, 3 * N * C * DTypeSize(cd)); });
  add("memset (N,C) fp32", 0, 1, [&] { d.Memset(dres, 0, N * C * sizeof(float)); });
  add("memset grads", 0, 1, [&] { d.Memset(grads, 0, P * sizeof(float)); });
  AdamWParams ap;
  add("adamw (all params)", 0, 1, [&] { AdamW(d, Flat(params, P), Flat(grads, P), Flat(m, P), Flat(v, P), ap); });
  add("squared norm (grads)", 0, 1, [&] { SquaredNorm(d, Flat(grads, P)); });
  add("convert f32->bf16 (params)", 0, cd == DType::kBF16 ? 1 : 0,
      [&] { Convert(d, Flat(params16, DType::kBF16, P), Flat(params, P)); });

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
  std::printf("kernel-only step: %.1f GFLOP/s = %.1f%% of %s peak (model FLOPs), %.0f tokens/s\n",
              model_flop / (step_ms * 1e-3), 100.0 * model_flop / (step_ms * 1e-3) / peak,
              dtype.c_str(), N / (step_ms * 1e-3));
  for (void* p : owned) d.Free(p);
  d.Free(tokens);
  return 0;
}

}  // namespace
}  // namespace anvil::kernels

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return anvil::kernels::Main();
}

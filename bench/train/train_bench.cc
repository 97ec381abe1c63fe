// train_bench: training throughput of one GPT step on the CPU device, and the
// same model and step in PyTorch eager measured in the same run.
//
// A step is what `train` does: forward, backward, global grad norm, AdamW.
// Prints ms/step (median), tokens/s, achieved GFLOP/s (6N + 6LCT per token),
// the fraction of the machine's sgemm peak measured now, and the ratio to
// PyTorch when `python3 -c "import torch"` works.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "kernels/device.h"
#include "kernels/ops/optim.h"
#include "kernels/cpu/peak.h"
#include "models/gpt/gpt.h"
#include "runtime/optim/adamw.h"

ABSL_FLAG(int32_t, n_layer, 6, "L");
ABSL_FLAG(int32_t, n_head, 6, "H");
ABSL_FLAG(int32_t, n_embd, 384, "C");
ABSL_FLAG(int32_t, seq_len, 256, "T");
ABSL_FLAG(int32_t, vocab_size, 256, "V");
ABSL_FLAG(int32_t, batch_size, 8, "B");
ABSL_FLAG(int32_t, threads, 2, "CPU threads");
ABSL_FLAG(int32_t, steps, 10, "timed steps");
ABSL_FLAG(int32_t, warmup, 2, "untimed steps");
ABSL_FLAG(bool, torch, true, "also run the PyTorch eager reference");
ABSL_FLAG(std::string, torch_script, "bench/train/torch_gpt_bench.py", "PyTorch reference script");

namespace {

double RunTorch(const std::string& args) {
  const std::string cmd = "python3 " + absl::GetFlag(FLAGS_torch_script) + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return 0;
  char line[512];
  double tps = 0;
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    std::printf("%s", line);
    const char* t = std::strstr(line, "tokens_per_s=");
    if (t != nullptr) tps = std::atof(t + 13);
  }
  pclose(p);
  return tps;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const anvil::GptConfig c{absl::GetFlag(FLAGS_n_layer), absl::GetFlag(FLAGS_n_head),
                           absl::GetFlag(FLAGS_n_embd), absl::GetFlag(FLAGS_seq_len),
                           absl::GetFlag(FLAGS_vocab_size)};
  const int B = absl::GetFlag(FLAGS_batch_size), T = c.max_seq_len;
  const int threads = absl::GetFlag(FLAGS_threads);
  auto device = anvil::kernels::MakeCpuDevice(threads);
  auto model_or = anvil::Gpt::Create(c, anvil::GptOptions{B, T}, device.get());
  if (!model_or.ok()) {
    std::fprintf(stderr, "train_bench: %s\n", std::string(model_or.status().message()).c_str());
    return 2;
  }
  anvil::Gpt& model = **model_or;
  const size_t n = model.layout().total_numel();
  std::vector<float> params(n), grads(n), m(n, 0.f), v(n, 0.f);
  model.InitParams(params.data(), 1);
  anvil::AdamW opt(device.get(), model.layout(), 0, n, anvil::AdamWConfig{});
  std::mt19937 rng(0);
  std::vector<int32_t> in(B * T), tg(B * T);
  for (int i = 0; i < B * T; ++i) {
    in[i] = static_cast<int32_t>(rng() % c.vocab_size);
    tg[i] = static_cast<int32_t>(rng() % c.vocab_size);
  }
  if (!model.SetBatch(in.data(), tg.data(), B, T).ok()) return 2;

  std::vector<double> ms;
  const int steps = absl::GetFlag(FLAGS_steps), warmup = absl::GetFlag(FLAGS_warmup);
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    std::fill(grads.begin(), grads.end(), 0.f);
    model.ForwardAll(params.data());
    model.BackwardAll(params.data(), grads.data(), 1.0f);
    const double norm = std::sqrt(anvil::kernels::SquaredNorm(*device, anvil::kernels::Flat(grads.data(), n)));
    opt.Step(params.data(), grads.data(), m.data(), v.data(), 1e-4f,
             norm > 1.0 ? static_cast<float>(1.0 / norm) : 1.0f);
    device->Synchronize();
    if (s >= warmup) {
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  const double tps = B * T / (med / 1e3);
  const double gflops = model.FlopsPerToken(T) * tps / 1e9;
  const double peak = anvil::kernels::MeasureSgemmPeakGflops(threads);
  std::printf("config L=%d H=%d C=%d T=%d V=%d B=%d fp32, %d threads, %zu params, loss %.4f\n",
              c.n_layer, c.n_head, c.n_embd, T, c.vocab_size, B, threads, n, model.Loss());
  std::printf("anvil ms_per_step=%.2f tokens_per_s=%.1f gflops=%.1f sgemm_peak_gflops=%.1f "
              "fraction_of_peak=%.3f\n", med, tps, gflops, peak, gflops / peak);
  if (absl::GetFlag(FLAGS_torch)) {
    const double torch_tps = RunTorch(absl::StrFormat(
        "--L %d --H %d --C %d --T %d --V %d --B %d --threads %d --steps %d", c.n_layer, c.n_head,
        c.n_embd, T, c.vocab_size, B, threads, steps));
    if (torch_tps > 0) {
      std::printf("ratio anvil/torch tokens_per_s = %.2fx\n", tps / torch_tps);
    } else {
      std::printf("torch not importable: no ratio\n");
    }
  }
  return 0;
}

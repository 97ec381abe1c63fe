// train_bench: training throughput of one step of a registered language model
// (--model gpt | llama) on the CPU device, and the same model and step in
// PyTorch eager measured in the same run.
//
// A step is what `train` does in one process: the sharded engine's forward,
// backward, global grad norm, clipping and AdamW on fp32 master weights.
// --dtype bf16 computes in bf16 (the engine hands the model bf16 copies of
// the weights) and runs PyTorch under torch.autocast("cpu", bfloat16).
// Prints the CPU, ms/step (median), tokens/s, achieved GFLOP/s (6N + 6LCT per
// token), the fraction of the compute dtype's GEMM peak measured now (sgemm
// for fp32, the bf16 GEMM path for bf16), and the ratio to PyTorch when
// `python3 -c "import torch"` works. --rounds R alternates the two
// measurements R times and reports the median ratio: on a shared 2-core VM
// one-shot ratios of the same build spread by +-5%.
//
// --device cuda: the same step on GPU 0 (the CUDA device), e.g. GPT-2 124M
// (--n_layer 12 --n_head 12 --n_embd 768 --seq_len 1024 --vocab_size 50304
// --dtype bf16); MFU is against the GPU's data-sheet dense peak, and the line
// is set beside llm.c's published GPT-2 124M figure (about 140 ms per
// 524,288-token step on 8 H100s: about 468K tokens/s per GPU) and PyTorch
// eager and torch.compile under bf16 autocast on the same GPU in the same run.
// Without a usable GPU it prints one `skipped:` line and exits 0.
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
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/cpu/peak.h"
#include "kernels/device.h"
#include "models/model_registry.h"
#include "models/token_model.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/trainer/device_select.h"

ABSL_FLAG(std::string, model, "gpt", "registered language model: gpt | llama");
ABSL_FLAG(int32_t, n_layer, 6, "L");
ABSL_FLAG(int32_t, n_head, 6, "H");
ABSL_FLAG(int32_t, n_embd, 384, "C");
ABSL_FLAG(int32_t, n_kv_head, 0, "llama: key/value heads (0 = n_head)");
ABSL_FLAG(int32_t, ffn_hidden, 0,
          "llama: SwiGLU width (0 = the model's default)");
ABSL_FLAG(int32_t, seq_len, 256, "T");
ABSL_FLAG(int32_t, vocab_size, 256, "V");
ABSL_FLAG(int32_t, batch_size, 8, "B");
ABSL_FLAG(int32_t, threads, 2, "CPU threads");
ABSL_FLAG(int32_t, steps, 10, "timed steps");
ABSL_FLAG(int32_t, warmup, 2, "untimed steps");
ABSL_FLAG(std::string, dtype, "fp32", "compute dtype: fp32 | bf16");
ABSL_FLAG(bool, recompute, false,
          "recompute each unit's activations in backward");
ABSL_FLAG(bool, torch, true, "also run the PyTorch eager reference");
ABSL_FLAG(std::string, torch_script, "bench/train/torch_train_bench.py",
          "PyTorch reference script");
ABSL_FLAG(std::string, device, "cpu", "cpu | cuda (GPU 0)");
ABSL_FLAG(bool, torch_compile, true,
          "--device cuda: also run PyTorch with torch.compile");
ABSL_FLAG(std::string, python, "python3",
          "the Python that runs the PyTorch reference");
ABSL_FLAG(
    int32_t, rounds, 1,
    "CPU: alternate anvil and PyTorch measurements this many times and report "
    "the "
    "median ratio (a shared machine's slow spells then hit both sides alike)");

// llm.c's GPT-2 124M on 8 H100s: ~140 ms per 524,288-token step.
constexpr double kLlmcTokensPerSPerH100 = 524288.0 / 0.140 / 8;

namespace {

double RunTorch(const std::string &args) {
  const std::string cmd = absl::GetFlag(FLAGS_python) + " " +
                          absl::GetFlag(FLAGS_torch_script) + " " + args +
                          " 2>/dev/null";
  FILE *p = popen(cmd.c_str(), "r");
  if (p == nullptr)
    return 0;
  char line[512];
  double tps = 0;
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    std::printf("%s", line);
    const char *t = std::strstr(line, "tokens_per_s=");
    if (t != nullptr)
      tps = std::atof(t + 13);
  }
  pclose(p);
  return tps;
}

} // namespace

int main(int argc, char **argv) {
  absl::ParseCommandLine(argc, argv);
  const int B = absl::GetFlag(FLAGS_batch_size),
            T = absl::GetFlag(FLAGS_seq_len);
  const int threads = absl::GetFlag(FLAGS_threads);
  const std::string dtype = absl::GetFlag(FLAGS_dtype);
  if (dtype != "fp32" && dtype != "bf16") {
    std::fprintf(stderr,
                 "train_bench: --dtype must be fp32 or bf16, got '%s'\n",
                 dtype.c_str());
    return 2;
  }
  const anvil::DType cd =
      dtype == "bf16" ? anvil::DType::kBF16 : anvil::DType::kF32;
  const std::string device_flag = absl::GetFlag(FLAGS_device);
  if (device_flag != "cpu" && device_flag != "cuda") {
    std::fprintf(stderr,
                 "train_bench: --device must be cpu or cuda, got '%s'\n",
                 device_flag.c_str());
    return 2;
  }
  const bool gpu = device_flag == "cuda";
  anvil::DeviceChoice choice;
  if (gpu) {
    auto c = anvil::ChooseDevice("cuda", 0, 1, anvil::ProbeCuda());
    if (!c.ok()) {
      std::printf("train_bench: skipped: %s\n",
                  std::string(c.status().message()).c_str());
      return 0;
    }
    choice = *c;
  }
  anvil::proto::TrainConfig config;
  anvil::proto::ModelConfig &mc = *config.mutable_model();
  mc.set_kind(absl::GetFlag(FLAGS_model));
  mc.set_n_layer(absl::GetFlag(FLAGS_n_layer));
  mc.set_n_head(absl::GetFlag(FLAGS_n_head));
  mc.set_n_embd(absl::GetFlag(FLAGS_n_embd));
  mc.set_max_seq_len(T);
  mc.set_vocab_size(absl::GetFlag(FLAGS_vocab_size));
  if (mc.kind() != "gpt") {
    mc.set_n_kv_head(absl::GetFlag(FLAGS_n_kv_head));
    mc.set_ffn_hidden(absl::GetFlag(FLAGS_ffn_hidden));
  }
  config.mutable_data()->set_batch_size(B);
  config.mutable_data()->set_seq_len(T);
  config.set_param_dtype(dtype);
  config.set_recompute(absl::GetFlag(FLAGS_recompute) ? "unit" : "none");
  auto device = anvil::MakeDevice(choice, threads);
  auto spec = anvil::FindModel(mc.kind());
  if (!spec.ok() || (*spec)->data != anvil::DataKind::kTokens) {
    std::fprintf(stderr,
                 "train_bench: --model must name a language model: %s\n",
                 spec.ok() ? mc.kind().c_str()
                           : std::string(spec.status().message()).c_str());
    return 2;
  }
  auto model_or = anvil::CreateModel(config, device.get());
  if (!model_or.ok()) {
    std::fprintf(stderr, "train_bench: %s\n",
                 std::string(model_or.status().message()).c_str());
    return 2;
  }
  anvil::TokenModel &model = static_cast<anvil::TokenModel &>(**model_or);
  const size_t n = model.layout().total_numel();
  anvil::EngineOptions eo;
  eo.param_dtype = cd;
  eo.adamw.weight_decay = 0.1f;
  auto engine_or = anvil::ShardedEngine::Create(&model, device.get(), {}, eo);
  if (!engine_or.ok()) {
    std::fprintf(stderr, "train_bench: %s\n",
                 std::string(engine_or.status().message()).c_str());
    return 2;
  }
  anvil::ShardedEngine &engine = **engine_or;
  if (!engine.InitParams(1).ok())
    return 1;
  std::mt19937 rng(0);
  std::vector<int32_t> in(B * T), tg(B * T);
  for (int i = 0; i < B * T; ++i) {
    in[i] = static_cast<int32_t>(rng() % mc.vocab_size());
    tg[i] = static_cast<int32_t>(rng() % mc.vocab_size());
  }
  if (!model.SetBatch(in.data(), tg.data(), B, T).ok())
    return 2;

  double loss = 0;
  const int steps = absl::GetFlag(FLAGS_steps),
            warmup = absl::GetFlag(FLAGS_warmup);
  // Median ms per step of `timed` steps after `untimed` ones; 0 on failure.
  auto time_steps = [&](int untimed, int timed) -> double {
    std::vector<double> ms;
    for (int s = 0; s < untimed + timed; ++s) {
      const auto t0 = std::chrono::steady_clock::now();
      auto l = engine.ForwardBackward(1.0f, true);
      if (!l.ok() || !engine.Step(1e-4f, *l).ok())
        return 0.0;
      loss = *l;
      device->Synchronize();
      if (s >= untimed) {
        ms.push_back(std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - t0)
                         .count());
      }
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  // The CPU peak is the best of one measurement before the timed steps and
  // one after: a slow spell of a shared machine during a single measurement
  // made fraction_of_peak read above 1.
  auto cpu_peak = [&] {
    return cd == anvil::DType::kBF16
               ? anvil::kernels::MeasureBf16GemmPeakGflops(threads)
               : anvil::kernels::MeasureSgemmPeakGflops(threads);
  };
  const double peak_before = gpu ? 0.0 : cpu_peak();
  const double med = time_steps(warmup, steps);
  if (med <= 0)
    return 1;
  const double tps = B * T / (med / 1e3);
  const double gflops = model.FlopsPerToken(T) * tps / 1e9;
  const double peak =
      gpu ? anvil::NominalPeakFlops(choice, cd == anvil::DType::kBF16) / 1e9
          : std::max(peak_before, cpu_peak());
  if (gpu) {
    std::printf("gpu %s\n", device->Describe().c_str());
  } else {
    std::printf("cpu %s; %s; OpenBLAS %s\n",
                anvil::kernels::cpu::CpuModelName().c_str(),
                anvil::kernels::cpu::CpuIsaSummary().c_str(),
                anvil::kernels::cpu::BlasCoreName().c_str());
  }
  std::printf("config %s B=%d %s%s, %s, %zu params, loss %.4f\n",
              (*spec)->describe(mc).c_str(), B, dtype.c_str(),
              absl::GetFlag(FLAGS_recompute) ? " recompute" : "",
              gpu ? choice.name.c_str()
                  : absl::StrFormat("%d threads", threads).c_str(),
              n, loss);
  if (gpu) {
    // MFU: achieved (6N + 6LCT per token) over the data-sheet dense peak.
    std::printf(
        "anvil %s %s cuda ms_per_step=%.2f tokens_per_s=%.1f tflops=%.1f "
        "peak_tflops=%.1f mfu=%.3f\n",
        mc.kind().c_str(), dtype.c_str(), med, tps, gflops / 1e3, peak / 1e3,
        peak > 0 ? gflops / peak : 0.0);
    std::printf("llm.c GPT-2 124M bf16 (published: ~140 ms per 524,288-token "
                "step on 8 H100s) "
                "tokens_per_s_per_gpu=%.0f; anvil/llm.c = %.2fx%s\n",
                kLlmcTokensPerSPerH100, tps / kLlmcTokensPerSPerH100,
                mc.n_layer() == 12 && mc.n_embd() == 768 && T == 1024
                    ? ""
                    : " (not the same config)");
  } else {
    std::printf("anvil %s %s ms_per_step=%.2f tokens_per_s=%.1f gflops=%.1f "
                "%s_peak_gflops=%.1f "
                "fraction_of_peak=%.3f\n",
                mc.kind().c_str(), dtype.c_str(), med, tps, gflops,
                cd == anvil::DType::kBF16 ? "bf16_gemm" : "sgemm", peak,
                gflops / peak);
  }
  // The Llama's resolved widths (its spec fills in 0 = the model's default),
  // read back from the layout so the reference builds the same model.
  int kv_heads = 0, ffn = 0;
  if (mc.kind() == "llama") {
    const anvil::ParamLayout &layout = model.layout();
    const int hd = mc.n_embd() / mc.n_head();
    kv_heads = static_cast<int>(
        layout.params()[layout.Find("model.layers.0.self_attn.k_proj.weight")]
            .shape[0] /
        hd);
    ffn = static_cast<int>(
        layout.params()[layout.Find("model.layers.0.mlp.gate_proj.weight")]
            .shape[0]);
  }
  if (absl::GetFlag(FLAGS_torch)) {
    const std::string common = absl::StrFormat(
        "--model %s --L %d --H %d --KV %d --F %d --C %d --T %d --V %d --B %d "
        "--threads %d "
        "--steps %d --dtype %s --device %s",
        mc.kind(), mc.n_layer(), mc.n_head(), kv_heads, ffn, mc.n_embd(), T,
        mc.vocab_size(), B, threads, steps, dtype, device_flag);
    std::vector<std::pair<std::string, std::string>> runs = {{"eager", common}};
    if (gpu && absl::GetFlag(FLAGS_torch_compile))
      runs.push_back({"compile", common + " --compile"});
    const int rounds = gpu ? 1 : std::max(1, absl::GetFlag(FLAGS_rounds));
    for (const auto &[mode, args] : runs) {
      const double torch_tps = RunTorch(args);
      if (torch_tps <= 0) {
        std::printf("torch %s not available (torch not importable, or the run "
                    "failed): no ratio\n",
                    mode.c_str());
        continue;
      }
      std::printf("ratio anvil/torch %s %s %s%s tokens_per_s = %.2fx\n",
                  mc.kind().c_str(), dtype.c_str(), gpu ? "cuda " : "",
                  mode.c_str(), tps / torch_tps);
      if (rounds == 1)
        continue;
      std::vector<double> ratios = {tps / torch_tps};
      for (int r = 1; r < rounds; ++r) {
        const double again = time_steps(1, steps);
        const double t_tps = RunTorch(args);
        if (again <= 0 || t_tps <= 0)
          break;
        const double a_tps = B * T / (again / 1e3);
        std::printf(
            "round %d: anvil ms_per_step=%.2f tokens_per_s=%.1f ratio %.2fx\n",
            r + 1, again, a_tps, a_tps / t_tps);
        ratios.push_back(a_tps / t_tps);
      }
      std::sort(ratios.begin(), ratios.end());
      std::printf("ratio anvil/torch %s %s %s median of %zu rounds = %.2fx "
                  "(min %.2fx, max %.2fx)\n",
                  mc.kind().c_str(), dtype.c_str(), mode.c_str(), ratios.size(),
                  ratios[ratios.size() / 2], ratios.front(), ratios.back());
    }
  }
  return 0;
}

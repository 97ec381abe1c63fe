// diffusion_bench: training throughput of the diffusion denoisers (--model
// unet and dit) on the CPU device at 32x32x1 (Fashion-MNIST padded to 32,
// random data), batch 64, fp32 and bf16, and the same models and step in
// PyTorch eager measured in the same run (bench/diffusion/
// torch_diffusion_bench.py).
//
// A step is what `train` does in one process: the sharded engine's forward,
// backward, global grad norm, clipping, AdamW on fp32 master weights and the
// EMA update, with the engine options `train` derives from the schema
// defaults (EngineOptionsFromConfig). Models: the schema defaults at 32x32
// (UNet with --unet_attention_res 8; DiT with --patch_size 4 and 2).
// bf16 computes in bf16 (the engine hands the model bf16 weight copies) and
// runs PyTorch under torch.autocast("cpu", bfloat16).
//
// Prints the CPU, per case ms/step (median), images/s, achieved GFLOP/s
// (the model's FlopsPerImage), the fraction of the dtype's GEMM peak measured
// now (sgemm for fp32, oneDNN bf16 GEMM for bf16; on the same clock as the
// step) and, when the --python
// interpreter imports torch, the anvil/torch images/s ratio.
// --clock cpu times process CPU time instead of the wall clock (for a loaded
// machine; meaningful with --threads 1; the torch side and the GEMM peak use
// it too, so GFLOP/s are then per CPU second).
//
// Run from the repository root (the script path is relative):
//   build/bench/diffusion/diffusion_bench --python <venv>/bin/python [--threads 1 --clock cpu]
#include <time.h>

#include <algorithm>
#include <chrono>
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
#include "absl/strings/str_split.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/cpu/dnnl_gemm.h"
#include "kernels/cpu/peak.h"
#include "kernels/device.h"
#include "models/batch.h"
#include "models/diffusion_model.h"
#include "models/model_registry.h"
#include "runtime/config/schema.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/trainer/trainer.h"

ABSL_FLAG(std::string, models, "unet,dit4,dit2",
          "cases, comma-separated: unet | dit4 (DiT, patch 4) | dit2 (DiT, patch 2)");
ABSL_FLAG(std::string, dtypes, "fp32,bf16", "compute dtypes, comma-separated: fp32 | bf16");
ABSL_FLAG(int32_t, image_size, 32, "image side (Fashion-MNIST padded to 32)");
ABSL_FLAG(int32_t, batch_size, 64, "images per step");
ABSL_FLAG(int32_t, threads, 2, "CPU threads");
ABSL_FLAG(int32_t, steps, 5, "timed steps (the median is reported)");
ABSL_FLAG(int32_t, warmup, 1, "untimed steps");
ABSL_FLAG(std::string, clock, "wall", "wall | cpu (process CPU time, for a loaded machine)");
ABSL_FLAG(bool, torch, true, "also run the PyTorch eager reference");
ABSL_FLAG(std::string, python, "python3", "Python interpreter for the PyTorch reference");
ABSL_FLAG(std::string, torch_script, "bench/diffusion/torch_diffusion_bench.py",
          "PyTorch reference script");

namespace {

double NowMs(bool cpu) {
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The dtype's GEMM peak on the process CPU clock (--clock cpu): the GEMMs of
// kernels/cpu/peak.cc (2048^3, OpenBLAS sgemm for fp32, oneDNN bf16 x bf16
// -> fp32 for bf16), best of 4 after one warm-up, as flops per CPU second,
// so that the fraction compares like with like on a loaded machine.
double CpuClockPeakGflops(bool bf16, int threads) {
  const int n = 2048;
  const size_t nn = static_cast<size_t>(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  for (size_t i = 0; i < nn; ++i) {
    a[i] = static_cast<float>(i % 13) * 0.01f;
    b[i] = static_cast<float>(i % 7) * 0.02f;
  }
  std::vector<uint16_t> a16(bf16 ? nn : 0), b16(bf16 ? nn : 0);
  anvil::kernels::cpu::GemmArgs g;
  if (bf16) {
    anvil::kernels::ConvertF32ToBF16(a16.data(), a.data(), nn);
    anvil::kernels::ConvertF32ToBF16(b16.data(), b.data(), nn);
    g.M = g.N = g.K = n;
    g.a = a16.data(), g.b = b16.data();
    g.a_type = g.b_type = anvil::DType::kBF16;
    g.lda = g.ldb = g.ldc = n;
    g.trans_b = true;
    g.c = c.data();
  } else {
    anvil::kernels::cpu::SetBlasThreads(threads);
  }
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const double t0 = NowMs(true);
    if (bf16) {
      anvil::kernels::cpu::Gemm(threads, g);
    } else {
      anvil::kernels::cpu::Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f,
                                 a.data(), n, b.data(), n, 0.0f, c.data(), n);
    }
    if (r > 0) best = std::min(best, NowMs(true) - t0);
  }
  return 2.0 * n * static_cast<double>(n) * n / (best * 1e-3) * 1e-9;
}

// Runs the reference and echoes its lines; returns its images/s, 0 when it
// printed none (torch not importable, or it failed).
double RunTorch(const std::string& args) {
  const std::string cmd = absl::GetFlag(FLAGS_python) + " " + absl::GetFlag(FLAGS_torch_script) +
                          " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return 0;
  char line[1024];
  double ips = 0;
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    const char* t = std::strstr(line, "images_per_s=");
    if (t != nullptr) {
      ips = std::atof(t + 13);
      std::printf("%s", line);
    } else if (std::strncmp(line, "torch not importable", 20) == 0) {
      std::printf("%s", line);
    }
  }
  pclose(p);
  return ips;
}

struct Case {
  std::string name;  // unet | dit4 | dit2
  std::string kind;  // unet | dit
  int patch = 0;
};

// Fills in one case's model config from the schema defaults (what `train`
// runs with no model flags) at image_size.
anvil::proto::TrainConfig MakeConfig(const Case& c, const std::string& dtype, int S, int B) {
  anvil::proto::TrainConfig config = anvil::DefaultTrainConfig();
  anvil::proto::ModelConfig& mc = *config.mutable_model();
  mc.set_kind(c.kind);
  mc.set_image_size(S);
  mc.set_image_channels(1);
  if (c.kind == "unet") mc.set_unet_attention_res(std::to_string(S / 4));
  if (c.kind == "dit") mc.set_patch_size(c.patch);
  config.mutable_data()->set_batch_size(B);
  config.mutable_data()->set_image_pad(S);
  config.set_param_dtype(dtype);
  config.set_recompute("none");
  return config;
}

// The reference's model arguments: the resolved shape of the case.
std::string TorchModelArgs(const Case& c, const anvil::proto::ModelConfig& m) {
  if (c.kind == "unet") {
    return absl::StrFormat(
        "--model unet --S %d --IC %d --CH %d --MULT %s --NB %d --ATTN %s --G %d --NH %d --K %d "
        "--eps %g",
        m.image_size(), m.image_channels(), m.unet_channels(), m.unet_channel_mult(),
        m.unet_blocks(), m.unet_attention_res(), m.norm_groups(), m.n_head(), m.image_classes(),
        m.norm_eps());
  }
  return absl::StrFormat("--model dit --S %d --IC %d --L %d --NH %d --C %d --P %d --K %d",
                         m.image_size(), m.image_channels(), m.n_layer(), m.n_head(), m.n_embd(),
                         m.patch_size(), m.image_classes());
}

// One case: builds the model and engine, times the step; 0 on success.
int RunCase(const Case& c, const std::string& dtype, double peak) {
  const int S = absl::GetFlag(FLAGS_image_size), B = absl::GetFlag(FLAGS_batch_size);
  const int threads = absl::GetFlag(FLAGS_threads);
  const bool cpu_clock = absl::GetFlag(FLAGS_clock) == "cpu";
  const anvil::proto::TrainConfig config = MakeConfig(c, dtype, S, B);
  auto spec = anvil::FindModel(c.kind);
  if (!spec.ok()) {
    std::fprintf(stderr, "diffusion_bench: %s\n", std::string(spec.status().message()).c_str());
    return 2;
  }
  if (absl::Status st = (*spec)->validate(config); !st.ok()) {
    std::fprintf(stderr, "diffusion_bench: %s: %s\n", c.name.c_str(),
                 std::string(st.message()).c_str());
    return 2;
  }
  auto device = anvil::kernels::MakeCpuDevice(threads);
  auto model_or = anvil::CreateModel(config, device.get());
  if (!model_or.ok()) {
    std::fprintf(stderr, "diffusion_bench: %s\n", std::string(model_or.status().message()).c_str());
    return 2;
  }
  auto& model = static_cast<anvil::DiffusionModel&>(**model_or);
  auto eo = anvil::EngineOptionsFromConfig(config);
  if (!eo.ok()) {
    std::fprintf(stderr, "diffusion_bench: %s\n", std::string(eo.status().message()).c_str());
    return 2;
  }
  auto engine_or = anvil::ShardedEngine::Create(&model, device.get(), {}, *eo);
  if (!engine_or.ok()) {
    std::fprintf(stderr, "diffusion_bench: %s\n", std::string(engine_or.status().message()).c_str());
    return 2;
  }
  anvil::ShardedEngine& engine = **engine_or;
  if (!engine.InitParams(config.seed()).ok()) return 1;

  // Random diffusion batch: x_t and target N(0,1), t in [0,T), labels with
  // some null-class (unconditional) entries as label dropout gives.
  const int H = model.image_height(), W = model.image_width(), IC = model.image_channels();
  const int K = config.model().image_classes();
  std::mt19937 rng(0);
  std::normal_distribution<float> nd;
  std::vector<float> x_t(static_cast<size_t>(B) * H * W * IC), target(x_t.size());
  for (float& v : x_t) v = nd(rng);
  for (float& v : target) v = nd(rng);
  std::vector<int32_t> t(B), labels(B);
  for (int i = 0; i < B; ++i) {
    t[i] = static_cast<int32_t>(rng() % config.diffusion().timesteps());
    labels[i] = static_cast<int32_t>(rng() % (K + 1));
  }
  anvil::Batch batch;
  const std::vector<int64_t> img_shape = {B, H, W, IC};
  batch.Set("x_t", {anvil::DType::kF32, img_shape, x_t.data()});
  batch.Set("target", {anvil::DType::kF32, img_shape, target.data()});
  batch.Set("timesteps", {anvil::DType::kI32, {B}, t.data()});
  batch.Set("labels", {anvil::DType::kI32, {B}, labels.data()});
  if (absl::Status st = model.SetBatch(batch); !st.ok()) {
    std::fprintf(stderr, "diffusion_bench: %s\n", std::string(st.message()).c_str());
    return 2;
  }

  std::vector<double> ms;
  double loss = 0;
  const int steps = absl::GetFlag(FLAGS_steps), warmup = absl::GetFlag(FLAGS_warmup);
  for (int s = 0; s < warmup + steps; ++s) {
    const double t0 = NowMs(cpu_clock);
    auto l = engine.ForwardBackward(1.0f, true);
    if (!l.ok() || !engine.Step(1e-4f, *l).ok()) return 1;
    loss = *l;
    device->Synchronize();
    if (s >= warmup) ms.push_back(NowMs(cpu_clock) - t0);
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  const double ips = B / (med / 1e3);
  const double gflops = model.FlopsPerImage() * ips / 1e9;
  std::printf("config %s %s B=%d %s, %d threads, %zu params, %.2f GFLOP/image, loss %.4f\n",
              c.name.c_str(), (*spec)->describe(config.model()).c_str(), B, dtype.c_str(),
              threads, model.layout().total_numel(), model.FlopsPerImage() / 1e9, loss);
  std::printf("anvil %s %s ms_per_step=%.1f images_per_s=%.1f gflops=%.1f %s_peak_gflops=%.1f "
              "fraction_of_peak=%.3f\n",
              c.name.c_str(), dtype.c_str(), med, ips, gflops,
              dtype == "bf16" ? "bf16_gemm" : "sgemm", peak, gflops / peak);
  if (absl::GetFlag(FLAGS_torch)) {
    const auto& o = config.optim();
    const double torch_ips = RunTorch(absl::StrFormat(
        "%s --name %s --B %d --threads %d --steps %d --warmup %d --dtype %s --clock %s "
        "--weight_decay %g --beta1 %g --beta2 %g --adam_eps %g --grad_clip %g --ema_decay %g",
        TorchModelArgs(c, config.model()), c.name, B, threads, steps, warmup, dtype,
        absl::GetFlag(FLAGS_clock), o.weight_decay(), o.beta1(), o.beta2(), o.eps(),
        o.grad_clip(), o.ema_decay()));
    if (torch_ips > 0) {
      std::printf("ratio anvil/torch %s %s images_per_s = %.2fx (target >= 1.5x)\n",
                  c.name.c_str(), dtype.c_str(), ips / torch_ips);
    } else {
      std::printf("torch not importable: no ratio\n");
    }
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int threads = absl::GetFlag(FLAGS_threads);
  if (absl::GetFlag(FLAGS_clock) != "wall" && absl::GetFlag(FLAGS_clock) != "cpu") {
    std::fprintf(stderr, "diffusion_bench: --clock must be wall or cpu, got '%s'\n",
                 absl::GetFlag(FLAGS_clock).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_batch_size) <= 0 || absl::GetFlag(FLAGS_steps) <= 0 ||
      absl::GetFlag(FLAGS_warmup) < 0 || threads <= 0 || absl::GetFlag(FLAGS_image_size) <= 0) {
    std::fprintf(stderr, "diffusion_bench: --batch_size, --steps, --threads and --image_size "
                         "must be > 0 and --warmup >= 0\n");
    return 2;
  }
  std::vector<Case> cases;
  for (absl::string_view m : absl::StrSplit(absl::GetFlag(FLAGS_models), ',')) {
    if (m == "unet") {
      cases.push_back({"unet", "unet", 0});
    } else if (m == "dit4" || m == "dit2") {
      cases.push_back({std::string(m), "dit", m == "dit4" ? 4 : 2});
    } else {
      std::fprintf(stderr, "diffusion_bench: --models entries are unet | dit4 | dit2, got '%s'\n",
                   std::string(m).c_str());
      return 2;
    }
  }
  std::vector<std::string> dtypes = absl::StrSplit(absl::GetFlag(FLAGS_dtypes), ',');
  for (const std::string& d : dtypes) {
    if (d != "fp32" && d != "bf16") {
      std::fprintf(stderr, "diffusion_bench: --dtypes entries are fp32 | bf16, got '%s'\n",
                   d.c_str());
      return 2;
    }
  }
  std::printf("cpu %s; %s; OpenBLAS %s\n", anvil::kernels::cpu::CpuModelName().c_str(),
              anvil::kernels::cpu::CpuIsaSummary().c_str(),
              anvil::kernels::cpu::BlasCoreName().c_str());
  std::printf("clock %s, %d threads, batch %d, %dx%dx1 images, median of %d steps after %d\n",
              absl::GetFlag(FLAGS_clock).c_str(), threads, absl::GetFlag(FLAGS_batch_size),
              absl::GetFlag(FLAGS_image_size), absl::GetFlag(FLAGS_image_size),
              absl::GetFlag(FLAGS_steps), absl::GetFlag(FLAGS_warmup));
  std::fflush(stdout);
  for (const std::string& d : dtypes) {
    const bool bf16 = d == "bf16";
    const double peak =
        absl::GetFlag(FLAGS_clock) == "cpu" ? CpuClockPeakGflops(bf16, threads)
        : bf16                              ? anvil::kernels::MeasureBf16GemmPeakGflops(threads)
                                            : anvil::kernels::MeasureSgemmPeakGflops(threads);
    for (const Case& c : cases) {
      if (int rc = RunCase(c, d, peak); rc != 0) return rc;
    }
  }
  return 0;
}

// sample: draws a PNG grid from a diffusion checkpoint (sample_tool.h).
//
//   sample --checkpoint_dir DIR --out grid.png [--sampler ddim|ddpm]
//          [--steps 50] [--eta 0] [--guidance 3] [--seed 0] [--per_class 10]
//          [--use_ema=false] [--checkpoint DIR/step_N] [--dtype fp32|bf16]
//          [--batch 100] [--eval --classifier_dir CLF [--eval_samples 100]]
// Prints where the grid is; with --eval, then the quality metric of
// eval_samples more images per class (sample_tool.h): the Fréchet distance
// of classifier features against real test images, its floor, and the
// conditional accuracy. Exit codes: 0 ok, 2 bad input (one line).
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/command_line.h"
#include "runtime/diffusion/sample_tool.h"

ABSL_FLAG(std::string, checkpoint_dir, "", "Run directory: its newest committed checkpoint.");
ABSL_FLAG(std::string, checkpoint, "", "One checkpoint (a step_<N> directory).");
ABSL_FLAG(std::string, out, "", "Output PNG.");
ABSL_FLAG(bool, use_ema, true, "Sample with the EMA weights when the checkpoint has them.");
ABSL_FLAG(std::string, sampler, "ddim", "ddim | ddpm.");
ABSL_FLAG(int, steps, 50, "DDIM steps (DDPM takes all T).");
ABSL_FLAG(double, eta, 0.0, "DDIM noise scale in [0, 1] (1: DDPM's variance).");
ABSL_FLAG(double, guidance, 3.0, "Classifier-free guidance scale w (1: conditional only).");
ABSL_FLAG(uint64_t, seed, 0, "Sampling seed.");
ABSL_FLAG(int, per_class, 10, "Images per row (one row per class when conditional).");
ABSL_FLAG(int, threads, 0, "CPU threads (0: all cores).");
ABSL_FLAG(std::string, dtype, "fp32",
          "Compute dtype: fp32, or bf16 (bf16 weights and activations, fp32 accumulation; several "
          "times faster on CPUs with AVX512-BF16/AMX).");
ABSL_FLAG(bool, eval, false,
          "After the grid, measure samples with the classifier of --classifier_dir: Frechet "
          "distance to real test images (and its real-vs-real floor), conditional accuracy.");
ABSL_FLAG(
    std::string, classifier_dir, "",
    "Checkpoint directory of a `train --model classifier` run (or one step_<N>), for --eval.");
ABSL_FLAG(int, eval_samples, 100, "--eval: samples per class (in all when unconditional).");
ABSL_FLAG(int, batch, 100, "Images per model call (the grid's rows and the eval set are batched).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("sample --checkpoint_dir DIR --out grid.png [options]");
  if (auto checked = anvil::CheckCommandLine(argc, argv); !checked.ok()) {
    std::fprintf(stderr, "sample: %s\n", std::string(checked.status().message()).c_str());
    return 2;
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::fprintf(stderr, "sample: unexpected argument '%s'\n", args[1]);
    return 2;
  }
  anvil::diffusion::SampleToolOptions o;
  o.checkpoint_dir = absl::GetFlag(FLAGS_checkpoint_dir);
  o.checkpoint = absl::GetFlag(FLAGS_checkpoint);
  o.out = absl::GetFlag(FLAGS_out);
  o.use_ema = absl::GetFlag(FLAGS_use_ema);
  o.sampler = absl::GetFlag(FLAGS_sampler);
  o.steps = absl::GetFlag(FLAGS_steps);
  o.eta = absl::GetFlag(FLAGS_eta);
  o.guidance = absl::GetFlag(FLAGS_guidance);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.per_class = absl::GetFlag(FLAGS_per_class);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.dtype = absl::GetFlag(FLAGS_dtype);
  o.eval = absl::GetFlag(FLAGS_eval);
  o.classifier_dir = absl::GetFlag(FLAGS_classifier_dir);
  o.eval_samples = absl::GetFlag(FLAGS_eval_samples);
  o.batch = absl::GetFlag(FLAGS_batch);
  auto r = anvil::diffusion::RunSampleTool(o);
  if (!r.ok()) {
    std::fprintf(stderr, "sample: %s\n", std::string(r.status().message()).c_str());
    return 2;
  }
  std::printf("%s\n", r->Describe(o).c_str());
  if (r->quality.has_value()) std::printf("%s\n", r->DescribeQuality(o).c_str());
  return 0;
}

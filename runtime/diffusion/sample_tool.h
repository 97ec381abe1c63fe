// The `sample` tool: draws a grid of images from a diffusion checkpoint.
//
// It reads the newest committed checkpoint of a directory that verifies (or
// one named step directory), rebuilds the model from the manifest's config
// through the model registry (CreateModel, fp32 or --dtype bf16, up to
// `batch` images per call, grid rows batched together), loads its weights
// with the checkpoint reader — the EMA ("ema" state) when the checkpoint has
// one and use_ema, else "params" — and runs the DDPM or DDIM
// sampler of this folder with classifier-free guidance: one row per class
// when the model is conditional (labels 0..K-1, K rows), a square grid of
// unconditional samples otherwise. Images in [-1, 1] become 8-bit pixels
// (round((x + 1) * 127.5)), laid out with a 2-pixel black border, and are
// written as a PNG. The result depends only on the checkpoint and the
// options: the sampler's noise is a function of (seed, t, sample index).
// The diffusion settings (schedule, T, prediction, classes) are the
// checkpoint's; a config with --num_classes -1 (the data set's) reads the
// training labels the config names to count the classes.
//
// With eval (`sample --eval --classifier_dir DIR`) it then draws
// eval_samples images per class (conditional; eval_samples in all when
// unconditional), labels cycling through the classes, with the same
// sampler and a noise index range disjoint from the grid's, and measures
// them with runtime/eval's EvaluateSamples against the real test split of
// the data the model was trained on (its config's validation images):
// the Fréchet distance of the classifier's penultimate features, the
// classifier's accuracy on the requested classes, and the same distance
// between two disjoint real sets of the same size (the floor). The
// classifier is loaded before any sampling, so a bad --classifier_dir fails
// at once. README "Diffusion" says how to read the numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/eval/quality.h"

namespace anvil::diffusion {

struct SampleToolOptions {
  std::string checkpoint_dir;  // newest committed checkpoint that verifies
  std::string checkpoint;      // or this step directory
  std::string out;             // PNG path
  bool use_ema = true;
  std::string sampler = "ddim";  // ddpm | ddim
  int steps = 50;                // DDIM steps (DDPM always takes T)
  double eta = 0.0;
  double guidance = 3.0;
  uint64_t seed = 0;
  int per_class = 10;          // images per row
  int threads = 0;             // 0: the machine's cores
  std::string dtype = "fp32";  // compute: fp32 | bf16 (the weights are rounded to bf16)
  int batch = 100;             // images per model call (grid rows are batched together)
  // The quality metric (see above).
  bool eval = false;
  std::string classifier_dir;  // a `train --model classifier` run (or a step_<N> in it)
  int eval_samples = 100;      // per class (conditional), in all (unconditional)
};

struct SampleToolResult {
  std::string checkpoint;  // the step directory read
  int64_t step = 0;
  std::string weights;  // "ema" | "params"
  int rows = 0, cols = 0;
  int num_classes = 0;  // 0: unconditional
  std::string Describe(const SampleToolOptions& o) const;

  // With eval: the report and the classifier that measured it.
  std::optional<eval::QualityReport> quality;
  std::string classifier;  // its step directory
  int64_t classifier_step = 0;
  double eval_seconds = 0;  // sampling + measuring the eval set
  // Three lines (no trailing newline): what was compared, the Fréchet
  // distance with its floor, the conditional accuracy with chance and the
  // classifier's accuracy on real images. Empty without eval.
  std::string DescribeQuality(const SampleToolOptions& o) const;
};

// Errors are one line (bad options, no checkpoint, a checkpoint of a model
// that is no diffusion model, a missing tensor, an unwritable output).
absl::StatusOr<SampleToolResult> RunSampleTool(const SampleToolOptions& options);

}  // namespace anvil::diffusion

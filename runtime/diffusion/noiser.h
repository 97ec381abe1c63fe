// TrainingNoiser: turns clean images x_0 into one diffusion training example
// each: a timestep t uniform in [0, T), noise eps ~ N(0, I),
// x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and the regression target
// (eps, or v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0). For classifier-free
// guidance the class label is replaced by the null class (= num_classes)
// with probability label_dropout, and always when the data has no labels or
// the run is unconditional (num_classes = 0, null class 0). Each sample also
// gets a seed for the model's dropout masks (kernels/dropout_mask.h).
//
// Invariant: everything drawn for a sample is a counter-based function of
// (seed, step, global index) — step is the global batch number and the
// global index the sample's position in the global batch — so it is
// deterministic, identical whichever rank holds the sample, and resumes
// without any saved RNG state.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/diffusion/prediction.h"
#include "runtime/diffusion/schedule.h"

namespace anvil::diffusion {

struct NoiserOptions {
  uint64_t seed = 0;
  Prediction prediction = Prediction::kEps;
  double label_dropout = 0.1;  // in [0, 1]
  int num_classes = 0;         // the null class id; 0: unconditional
};

// One micro-batch; the outputs are caller buffers of the input's size.
struct NoiserBatch {
  int batch = 0;                    // B
  int64_t sample_numel = 0;         // H*W*C
  const float* x0 = nullptr;        // (B, sample_numel)
  const int32_t* labels = nullptr;  // (B) in [0, num_classes), or null: no labels
  uint64_t step = 0;                // global batch number
  uint64_t first_index = 0;         // global index of sample 0 (rank * B)
  float* x_t = nullptr;             // (B, sample_numel)
  int32_t* timesteps = nullptr;     // (B)
  int32_t* labels_out = nullptr;    // (B)
  float* target = nullptr;          // (B, sample_numel)
  int32_t* dropout_seeds = nullptr;  // (B) the model's dropout seed per sample, or null
};

class TrainingNoiser {
 public:
  // `schedule` must outlive the noiser.
  TrainingNoiser(const NoiseSchedule* schedule, const NoiserOptions& options)
      : schedule_(schedule), options_(options) {}

  void Apply(const NoiserBatch& b) const;
  const NoiserOptions& options() const { return options_; }

 private:
  const NoiseSchedule* schedule_;
  NoiserOptions options_;
  mutable std::vector<float> eps_;
};

}  // namespace anvil::diffusion

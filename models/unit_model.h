// UnitModel: all the runtime (single-process trainer or sharded runtime) sees
// of a model.
//
// A model is a sequence of units; unit u's parameters are one contiguous range
// of the flat buffer (see ParamLayout). Parameters reach the model in its
// compute dtype (compute_dtype(): F32, or BF16 under mixed precision, where
// the runtime gathers bf16 copies of the fp32 master weights); gradients
// are always fp32. Forward runs units 0..n-1 in order,
// Backward runs them n-1..0. Each call receives, per unit, a pointer to where
// that unit's parameters (and gradients) currently live: the whole flat buffer
// in a single process, freshly gathered unit buffers under FULL_SHARD. A unit
// may read the parameters of the units listed by UnitDeps (tied weights).
// The model owns its activations (one arena sized at construction) and knows
// nothing of ranks, shards or communication.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/dtype.h"
#include "kernels/tensor.h"
#include "models/batch.h"
#include "models/param_layout.h"

namespace anvil {

// units[u] points at the first element of unit u: parameters in the model's
// compute dtype, gradients in fp32.
using ParamPtrs = absl::Span<void* const>;
using GradPtrs = absl::Span<float* const>;

// What one sample of a batch is worth, for throughput and MFU.
struct SampleWork {
  const char* unit = "samples";  // what throughput counts: "tokens", "images"
  double items = 1;              // of those per sample (T for a sequence)
  double train_flops = 0;        // forward + backward FLOPs per sample
};

class UnitModel {
 public:
  virtual ~UnitModel() = default;

  virtual const ParamLayout& layout() const = 0;
  int num_units() const { return layout().num_units(); }
  // Units whose parameters unit u reads besides its own (e.g. a tied head).
  virtual std::vector<int> UnitDeps(int u) const = 0;

  // Fills a host fp32 buffer of layout().total_numel() with the model's
  // initialisation, deterministic in `seed`.
  virtual void InitParams(float* host_params, uint64_t seed) const = 0;

  // Copies a micro-batch in (host tensors from the model's data source, see
  // models/batch.h). Fails for a batch beyond the arena, a missing or
  // mis-shaped tensor, or values out of range (token ids, labels).
  virtual absl::Status SetBatch(const Batch& batch) = 0;

  // The dtype Forward/Backward read parameters in (fixed at construction).
  virtual DType compute_dtype() const = 0;

  virtual void Forward(int unit, ParamPtrs params) = 0;
  // Accumulates parameter gradients into `grads`. `loss_scale` multiplies
  // d(mean loss) — 1/grad_accum, times the fp16 loss scale when there is one.
  virtual void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) = 0;

  // Mean loss of the last batch (over its valid targets, pixels, ...); valid
  // after the last unit's Forward.
  virtual double Loss() = 0;
  // The same loss left on the device, so a runtime can reduce it there and
  // read it once per step: Loss() == sum(terms) * scale, terms an fp32
  // device view valid until the next Forward. Absent terms (the default):
  // the model offers none and the runtime reads Loss().
  struct LossTerms {
    kernels::TensorView terms;
    double scale = 0;
  };
  virtual LossTerms loss_terms() { return {}; }

  // The throughput unit and training FLOPs of one sample of the last batch.
  virtual SampleWork work_per_sample() const = 0;

  // Convenience for a single process: all units in one flat buffer
  // (params in compute_dtype()).
  void ForwardAll(void* params);
  void BackwardAll(void* params, float* grads, float loss_scale);
  std::vector<void*> UnitPointers(void* flat, DType dtype) const;
  std::vector<float*> GradPointers(float* flat) const;
};

}  // namespace anvil

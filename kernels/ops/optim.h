// optim: the optimizer step and the reductions the step needs, on fp32
// master weights, gradients and state (contiguous, same numel).
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

struct AdamWParams {
  float lr = 3e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled: param -= lr * wd * param
  int64_t step = 1;           // 1-based, for bias correction
  float grad_scale = 1.0f;    // gradients are multiplied by this before use
                              // (clipping and loss-scale unscaling fold in here)
};

// In place on param, m, v.
using AdamWFn = void(Device&, const TensorView& param, const TensorView& grad, const TensorView& m,
                     const TensorView& v, const AdamWParams& p);
void AdamW(Device& d, const TensorView& param, const TensorView& grad, const TensorView& m,
           const TensorView& v, const AdamWParams& p);

// Sum of squares, accumulated in double, returned on the host.
using SquaredNormFn = double(Device&, const TensorView& x);
double SquaredNorm(Device& d, const TensorView& x);
// True when any element is inf or NaN.
using HasNonFiniteFn = bool(Device&, const TensorView& x);
bool HasNonFinite(Device& d, const TensorView& x);

// The same reductions into device memory, for a step that reads its scalars
// back once (the sharded engine): out (F32, one element) = or += the
// reduction of x, computed in double as above, times `scale`, rounded once
// to fp32. kSum adds the elements in index order; kNonFinite gives 1 or 0.
enum class ReduceToKind : uint8_t { kSum = 0, kSquares = 1, kNonFinite = 2 };
struct ReduceToParams {
  ReduceToKind kind = ReduceToKind::kSum;
  double scale = 1.0;
  bool accumulate = false;  // out += instead of out =
};
using ReduceToFn = void(Device&, const TensorView& out, const TensorView& x,
                        const ReduceToParams& p);
void ReduceTo(Device& d, const TensorView& out, const TensorView& x, const ReduceToParams& p);

}  // namespace anvil::kernels

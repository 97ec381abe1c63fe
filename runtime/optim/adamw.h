// AdamW over a range of the flat buffers.
//
// The optimizer owns no tensors: it is handed the range [begin, end) of the
// flat parameter layout it is responsible for (the whole model in a single
// process, the local shard under sharding) and walks the layout table to apply
// weight decay only to tensors marked for it. Elements of the range beyond the
// layout (shard padding) are left untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/device.h"
#include "models/param_layout.h"

namespace anvil {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(kernels::Device* device, const ParamLayout& layout, size_t begin, size_t end,
        const AdamWConfig& config);

  // params, grads, m, v point at element `begin` of their flat buffers.
  // Gradients are multiplied by `grad_scale` (clipping, 1/loss-scale) first.
  void Step(float* params, const float* grads, float* m, float* v, float lr, float grad_scale);

  int64_t step() const { return step_; }
  void set_step(int64_t s) { step_ = s; }

 private:
  struct Segment {
    size_t offset;  // relative to `begin`
    size_t n;
    bool decay;
  };
  kernels::Device* device_;
  AdamWConfig config_;
  std::vector<Segment> segments_;
  int64_t step_ = 0;
};

}  // namespace anvil

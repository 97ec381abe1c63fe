#include "runtime/optim/adamw.h"

#include <algorithm>

#include "kernels/ops/optim.h"

namespace anvil {

AdamW::AdamW(kernels::Device* device, const ParamLayout& layout, size_t begin, size_t end,
             const AdamWConfig& config)
    : device_(device), config_(config) {
  for (const ParamInfo& p : layout.params()) {
    const size_t lo = std::max(begin, p.offset);
    const size_t hi = std::min(end, p.offset + p.numel);
    if (lo >= hi) continue;
    // Merge with the previous segment when contiguous and of the same kind.
    if (!segments_.empty() && segments_.back().decay == p.weight_decay &&
        segments_.back().offset + segments_.back().n == lo - begin) {
      segments_.back().n += hi - lo;
    } else {
      segments_.push_back(Segment{lo - begin, hi - lo, p.weight_decay});
    }
  }
}

void AdamW::Step(float* params, const float* grads, float* m, float* v, float lr,
                 float grad_scale) {
  ++step_;
  kernels::AdamWParams p;
  p.lr = lr;
  p.beta1 = config_.beta1;
  p.beta2 = config_.beta2;
  p.eps = config_.eps;
  p.step = step_;
  p.grad_scale = grad_scale;
  for (const Segment& s : segments_) {
    p.weight_decay = s.decay ? config_.weight_decay : 0.0f;
    kernels::AdamW(*device_, kernels::Flat(params + s.offset, s.n), kernels::Flat(grads + s.offset, s.n),
                   kernels::Flat(m + s.offset, s.n), kernels::Flat(v + s.offset, s.n), p);
  }
}

}  // namespace anvil

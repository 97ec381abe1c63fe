#include "runtime/optim/adamw.h"

#include <algorithm>

namespace anvil {

AdamW::AdamW(kernels::Backend* backend, const ParamLayout& layout, size_t begin, size_t end,
             const AdamWConfig& config)
    : backend_(backend), config_(config) {
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
    backend_->AdamW(params + s.offset, grads + s.offset, m + s.offset, v + s.offset, s.n, p);
  }
}

}  // namespace anvil

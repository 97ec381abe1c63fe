// The model tests' gradient check: a model's analytic parameter gradient
// (from BackwardAll, the batch already set) against central differences of
// its loss, at a few random elements of every parameter tensor.
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/param_layout.h"
#include "models/unit_model.h"

namespace anvil::testing {

struct FiniteDifferenceOptions {
  int per_tensor = 3;  // elements checked in each parameter tensor
  float h = 1e-2f;     // the step (fp32 parameters)
  // |analytic - numeric| <= abs_tol + rel_tol * |numeric|
  double abs_tol = 2e-3, rel_tol = 2e-2;
  // The element of a tensor to check (default: uniform over the tensor).
  std::function<size_t(const ParamInfo&, std::mt19937&)> pick;
};

// The loss with p[i] moved by delta (restored after).
inline double LossWithParamMoved(UnitModel& model, std::vector<float>& p, size_t i, float delta) {
  const float saved = p[i];
  p[i] = saved + delta;
  model.ForwardAll(p.data());
  const double l = model.Loss();
  p[i] = saved;
  return l;
}

// EXPECTs each checked element of g to match; returns how many were checked.
inline int ExpectGradientsMatchFiniteDifferences(UnitModel& model, std::vector<float>& p,
                                                 const std::vector<float>& g, std::mt19937& rng,
                                                 const FiniteDifferenceOptions& o = {},
                                                 const std::string& label = "") {
  int checked = 0;
  for (const ParamInfo& info : model.layout().params()) {
    for (int k = 0; k < o.per_tensor; ++k) {
      const size_t i = o.pick ? o.pick(info, rng) : info.offset + rng() % info.numel;
      const double numeric = (LossWithParamMoved(model, p, i, o.h) -
                              LossWithParamMoved(model, p, i, -o.h)) /
                             (2 * o.h);
      EXPECT_NEAR(g[i], numeric, o.abs_tol + o.rel_tol * std::fabs(numeric))
          << label << info.name << " [" << i - info.offset << "]";
      ++checked;
    }
  }
  return checked;
}

}  // namespace anvil::testing

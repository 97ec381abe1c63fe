#include "models/unit_model.h"

namespace anvil {

std::vector<void*> UnitModel::UnitPointers(void* flat, DType dtype) const {
  std::vector<void*> ptrs;
  for (const UnitInfo& u : layout().units()) {
    ptrs.push_back(static_cast<char*>(flat) + u.offset * DTypeSize(dtype));
  }
  return ptrs;
}

std::vector<float*> UnitModel::GradPointers(float* flat) const {
  std::vector<float*> ptrs;
  for (const UnitInfo& u : layout().units()) ptrs.push_back(flat + u.offset);
  return ptrs;
}

void UnitModel::ForwardAll(void* params) {
  std::vector<void*> p = UnitPointers(params, compute_dtype());
  for (int u = 0; u < num_units(); ++u) Forward(u, p);
}

void UnitModel::BackwardAll(void* params, float* grads, float loss_scale) {
  std::vector<void*> p = UnitPointers(params, compute_dtype());
  std::vector<float*> g = GradPointers(grads);
  for (int u = num_units() - 1; u >= 0; --u) Backward(u, p, g, loss_scale);
}

}  // namespace anvil

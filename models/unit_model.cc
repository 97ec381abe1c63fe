#include "models/unit_model.h"

namespace anvil {

std::vector<float*> UnitModel::UnitPointers(float* flat) const {
  std::vector<float*> ptrs;
  for (const UnitInfo& u : layout().units()) ptrs.push_back(flat + u.offset);
  return ptrs;
}

void UnitModel::ForwardAll(float* params) {
  std::vector<float*> p = UnitPointers(params);
  for (int u = 0; u < num_units(); ++u) Forward(u, p);
}

void UnitModel::BackwardAll(float* params, float* grads, float loss_scale) {
  std::vector<float*> p = UnitPointers(params);
  std::vector<float*> g = UnitPointers(grads);
  for (int u = num_units() - 1; u >= 0; --u) Backward(u, p, g, loss_scale);
}

}  // namespace anvil

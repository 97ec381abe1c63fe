#include "models/param_layout.h"

#include <utility>

namespace anvil {

void ParamLayout::BeginUnit(std::string name) {
  units_.push_back(UnitInfo{std::move(name), total_, 0});
}

size_t ParamLayout::Add(std::string name, std::vector<int64_t> shape, bool weight_decay) {
  if (units_.empty()) BeginUnit("unit0");
  size_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<size_t>(d);
  ParamInfo p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.offset = total_;
  p.numel = numel;
  p.unit = static_cast<int>(units_.size()) - 1;
  p.weight_decay = weight_decay;
  params_.push_back(std::move(p));
  total_ += numel;
  units_.back().numel += numel;
  return params_.size() - 1;
}

int ParamLayout::Find(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace anvil

// ParamLayout: the one table that describes a model's flat buffers.
//
// Parameters, gradients and optimizer state (AdamW m, v) all live in flat fp32
// buffers with the same layout. Each tensor has a name, a shape, an element
// offset and a unit. Invariants, true by construction:
//  - tensors are packed back to back in declaration order, no holes;
//  - a unit's tensors form one contiguous range [unit.offset, unit.offset+numel)
//    and units follow each other in index order.
// The sharded runtime slices these buffers per unit; the model only reads
// pointers out of the table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace anvil {

struct ParamInfo {
  std::string name;            // e.g. "h.0.attn.c_attn.weight"
  std::vector<int64_t> shape;  // row-major
  size_t offset = 0;           // elements from the start of the flat buffer
  size_t numel = 0;
  int unit = 0;
  bool weight_decay = false;   // AdamW decays matrices, not biases or norms
};

struct UnitInfo {
  std::string name;   // "embed", "h.3.attn", "head"
  size_t offset = 0;  // elements
  size_t numel = 0;
};

class ParamLayout {
 public:
  // Starts a new unit; tensors added after it belong to it.
  void BeginUnit(std::string name);
  // Appends a tensor to the current unit. Returns its index.
  size_t Add(std::string name, std::vector<int64_t> shape, bool weight_decay);

  const std::vector<ParamInfo>& params() const { return params_; }
  const std::vector<UnitInfo>& units() const { return units_; }
  size_t total_numel() const { return total_; }
  int num_units() const { return static_cast<int>(units_.size()); }

  // Index of a tensor by name, or -1.
  int Find(const std::string& name) const;
  // Element offset of a tensor within its unit.
  size_t OffsetInUnit(size_t index) const {
    return params_[index].offset - units_[params_[index].unit].offset;
  }

 private:
  std::vector<ParamInfo> params_;
  std::vector<UnitInfo> units_;
  size_t total_ = 0;
};

}  // namespace anvil

// Batch: one micro-batch as a data source yields it, for any kind of model.
//
// A batch is a small set of named host tensors that the data source owns
// (pointers stay valid until its next Next()). Language-model sources give
// "tokens" and "targets", both (B,T) I32 (targets < 0 are ignored); image
// sources give what diffusion and classifier models read ("images"
// (B,C,H,W) F32, "labels" (B) I32, ...). A model takes the tensors it needs
// by name and fails with one line naming a missing or mis-shaped one, so a
// model fed by the wrong data source says so instead of reading garbage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace anvil {

struct BatchTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major; shape[0] is the batch dimension
  const void* data = nullptr;  // host memory owned by the data source
};

class Batch {
 public:
  // Adds or replaces the tensor `name`.
  void Set(std::string name, BatchTensor t);
  // The tensor `name` if it exists with `dtype` and `rank` dimensions, else an
  // error naming the tensor and what differs.
  absl::StatusOr<BatchTensor> Get(std::string_view name, DType dtype, int rank) const;
  bool Has(std::string_view name) const;
  // Samples in the batch: the leading dimension shared by every tensor (0 if empty).
  int64_t samples() const;
  void Clear() { tensors_.clear(); }

 private:
  std::vector<std::pair<std::string, BatchTensor>> tensors_;
};

}  // namespace anvil

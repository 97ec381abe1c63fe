#include "models/batch.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace anvil {

void Batch::Set(std::string name, BatchTensor t) {
  for (auto& [n, existing] : tensors_) {
    if (n == name) {
      existing = std::move(t);
      return;
    }
  }
  tensors_.emplace_back(std::move(name), std::move(t));
}

bool Batch::Has(std::string_view name) const {
  for (const auto& [n, t] : tensors_) {
    if (n == name) return true;
  }
  return false;
}

absl::StatusOr<BatchTensor> Batch::Get(std::string_view name, DType dtype, int rank) const {
  for (const auto& [n, t] : tensors_) {
    if (n != name) continue;
    if (t.dtype != dtype || static_cast<int>(t.shape.size()) != rank) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch tensor '", std::string(name), "' is ", std::string(DTypeName(t.dtype)), " [", absl::StrJoin(t.shape, ","),
          "], the model needs ", std::string(DTypeName(dtype)), " with ", rank, " dimensions"));
    }
    return t;
  }
  std::vector<std::string> names;
  for (const auto& [n, t] : tensors_) names.push_back(n);
  return absl::InvalidArgumentError(absl::StrCat(
      "the batch has no tensor '", std::string(name), "' (it has: ",
      names.empty() ? "nothing" : absl::StrJoin(names, ", "),
      "); is the model fed by the right data source?"));
}

int64_t Batch::samples() const {
  return tensors_.empty() || tensors_.front().second.shape.empty()
             ? 0
             : tensors_.front().second.shape[0];
}

}  // namespace anvil

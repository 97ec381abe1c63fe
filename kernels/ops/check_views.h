// Precondition helpers shared by the family dispatchers: a violated one is
// a programming error (callers validate user input first), reported with the
// op's name and aborted on, like ANVIL_KCHECK.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "kernels/tensor.h"

namespace anvil::kernels::internal {

[[noreturn]] inline void ViewCheckFailed(const char* op, const char* what) {
  std::fprintf(stderr, "anvil: op %s: %s\n", op, what);
  std::abort();
}
inline void Expect(bool ok, const char* op, const char* what) {
  if (!ok) ViewCheckFailed(op, what);
}
inline bool IsFloat(const TensorView& v) {
  return v.dtype == DType::kF32 || v.dtype == DType::kBF16;
}
// Present, F32 or BF16, contiguous.
inline void ExpectFloat(const TensorView& v, const char* op, const char* name) {
  Expect(v.present() || v.numel() == 0, op, name);
  Expect(IsFloat(v), op, "operands must be F32 or BF16");
  Expect(v.contiguous(), op, "operands must be contiguous");
}
inline void ExpectF32(const TensorView& v, const char* op, const char* name) {
  Expect(v.dtype == DType::kF32, op, name);
  Expect(v.contiguous(), op, "operands must be contiguous");
}

}  // namespace anvil::kernels::internal

// TensorView: the one currency of every op — a pointer, an element type, a
// shape and strides (in elements), up to 4 dimensions. A view owns nothing.
//
// Invariants: ndim in [0, 4]; shape[i] >= 0; a default view (data == null)
// is "absent" (an optional operand, e.g. no bias). Views are cheap values;
// ops take them by const reference. Inputs and outputs alike are non-const
// views: constness is the op's contract, documented per op.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "common/dtype.h"

namespace anvil::kernels {

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int ndim = 0;
  std::array<int64_t, 4> shape{};
  std::array<int64_t, 4> stride{};

  bool present() const { return data != nullptr; }
  // Dimension i; negative i counts from the end (-1 = last).
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  int64_t stride_of(int i) const { return stride[i < 0 ? ndim + i : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  // Rows when viewed as a matrix over the last dimension (product of the rest).
  int64_t rows() const { return ndim == 0 ? 1 : numel() / (shape[ndim - 1] == 0 ? 1 : shape[ndim - 1]); }
  int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
  bool contiguous() const {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && stride[i] != s) return false;
      s *= shape[i];
    }
    return true;
  }
  template <class T>
  T* as() const { return static_cast<T*>(data); }
};

// A contiguous row-major view.
inline TensorView View(const void* data, DType dtype, std::initializer_list<int64_t> shape) {
  TensorView v;
  v.data = const_cast<void*>(data);
  v.dtype = dtype;
  v.ndim = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t s : shape) v.shape[i++] = s;
  int64_t st = 1;
  for (int k = v.ndim - 1; k >= 0; --k) {
    v.stride[k] = st;
    st *= v.shape[k];
  }
  return v;
}
inline TensorView View(const float* data, std::initializer_list<int64_t> shape) {
  return View(data, DType::kF32, shape);
}
inline TensorView View(const int32_t* data, std::initializer_list<int64_t> shape) {
  return View(data, DType::kI32, shape);
}
// A flat view of n elements.
inline TensorView Flat(const void* data, DType dtype, size_t n) {
  return View(data, dtype, {static_cast<int64_t>(n)});
}
inline TensorView Flat(const float* data, size_t n) { return Flat(data, DType::kF32, n); }

// A strided view: shape and strides given explicitly (elements).
inline TensorView Strided(const void* data, DType dtype, std::initializer_list<int64_t> shape,
                          std::initializer_list<int64_t> stride) {
  TensorView v = View(data, dtype, shape);
  int i = 0;
  for (int64_t s : stride) v.stride[i++] = s;
  return v;
}

// The view `offset` elements further into the same buffer.
inline TensorView Offset(TensorView v, int64_t offset) {
  v.data = static_cast<char*>(v.data) + offset * static_cast<int64_t>(DTypeSize(v.dtype));
  return v;
}

}  // namespace anvil::kernels

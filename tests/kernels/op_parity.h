// The CPU-vs-CUDA op comparison harness (the ggml test-backend-ops pattern):
// an OpCase holds host tensors (random values rounded to their dtype, so
// both devices read identical inputs; gradients pre-filled so += semantics
// are compared too), runs one function on the CPU device and on the CUDA
// device over copies of them, and compares every tensor marked as an
// output, elementwise:
//   |gpu - cpu| <= rtol * |cpu| + atol * max|cpu|
// Default tolerances, by output dtype and the length K of the longest
// reduction feeding an element:
//   F32:  rtol 1e-5, atol 1e-6 + 4e-7 K   (fp32 sums in another order)
//   BF16: rtol 2^-7, atol 2^-10 + 2^-20 K (one bf16 rounding, 2^-8 of the
//         value, may go either way when the fp32 results differ in the
//         last bits: two bf16 ulps; plus the fp32 order term)
// A case may widen a tolerance, saying why next to it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels::testing {

struct Tol {
  double rtol = 0, atol = 0;
};

inline Tol DefaultTol(DType out, int64_t K) {
  if (out == DType::kBF16) {
    return Tol{std::ldexp(1.0, -7),
               std::ldexp(1.0, -10) + static_cast<double>(K) * std::ldexp(1.0, -20)};
  }
  return Tol{1e-5, 1e-6 + 4e-7 * static_cast<double>(K)};
}

inline TensorView MakeView(void* data, DType t, const std::vector<int64_t>& shape) {
  TensorView v;
  v.data = data;
  v.dtype = t;
  v.ndim = static_cast<int>(shape.size());
  int64_t st = 1;
  for (int k = v.ndim - 1; k >= 0; --k) {
    v.shape[k] = shape[k];
    v.stride[k] = st;
    st *= shape[k];
  }
  return v;
}

class OpCase {
 public:
  using Fn = std::function<void(Device&, const std::vector<TensorView>&)>;

  explicit OpCase(std::string name) : name_(std::move(name)) {}

  // A float tensor of uniform values in [lo, hi), rounded to t.
  int Input(DType t, std::vector<int64_t> shape, float lo = -1.0f, float hi = 1.0f) {
    return AddRandom(t, std::move(shape), lo, hi, false, 0);
  }
  // A tensor the op writes (or accumulates into): pre-filled with random
  // values and compared. K: the reduction length behind each element.
  int Output(DType t, std::vector<int64_t> shape, int64_t K = 1, float lo = -1.0f,
             float hi = 1.0f) {
    return AddRandom(t, std::move(shape), lo, hi, true, K);
  }
  // I32 ids in [0, V); every `ignore_every`-th (if > 0) is -1.
  int Ids(std::vector<int64_t> shape, int V, int ignore_every = 0) {
    T& t = New(DType::kI32, std::move(shape), false);
    std::uniform_int_distribution<int32_t> dist(0, V - 1);
    auto* p = reinterpret_cast<int32_t*>(t.host.data());
    for (int64_t i = 0; i < t.numel; ++i) {
      p[i] = ignore_every > 0 && i % ignore_every == 1 ? -1 : dist(gen_);
    }
    return static_cast<int>(tensors_.size()) - 1;
  }
  void SetTol(int i, Tol tol) { tensors_[i].tol = tol; }

  void Run(Device& cpu, Device& gpu, const Fn& fn) {
    std::vector<std::vector<uint8_t>> got_cpu = RunOn(cpu, fn);
    std::vector<std::vector<uint8_t>> got_gpu = RunOn(gpu, fn);
    for (size_t i = 0; i < tensors_.size(); ++i) {
      if (!tensors_[i].compare) continue;
      EXPECT_TRUE(Close(tensors_[i], got_gpu[i], got_cpu[i]))
          << name_ << ", tensor " << i << " (" << DTypeName(tensors_[i].t) << ")";
    }
  }

 private:
  struct T {
    DType t;
    std::vector<int64_t> shape;
    int64_t numel = 1;
    std::vector<uint8_t> host;
    bool compare = false;
    Tol tol;
  };

  T& New(DType t, std::vector<int64_t> shape, bool compare) {
    T x;
    x.t = t;
    x.shape = std::move(shape);
    for (int64_t s : x.shape) x.numel *= s;
    x.host.resize(static_cast<size_t>(x.numel) * DTypeSize(t));
    x.compare = compare;
    tensors_.push_back(std::move(x));
    return tensors_.back();
  }

  int AddRandom(DType t, std::vector<int64_t> shape, float lo, float hi, bool compare, int64_t K) {
    T& x = New(t, std::move(shape), compare);
    x.tol = DefaultTol(t, K);
    std::uniform_real_distribution<float> dist(lo, hi);
    for (int64_t i = 0; i < x.numel; ++i) {
      const float v = dist(gen_);
      if (t == DType::kBF16) {
        reinterpret_cast<uint16_t*>(x.host.data())[i] = F32ToBF16(v);
      } else {
        reinterpret_cast<float*>(x.host.data())[i] = v;
      }
    }
    return static_cast<int>(tensors_.size()) - 1;
  }

  std::vector<std::vector<uint8_t>> RunOn(Device& d, const Fn& fn) {
    std::vector<void*> ptrs;
    std::vector<TensorView> views;
    for (const T& x : tensors_) {
      void* p = d.Alloc(x.host.size());
      d.CopyFromHost(p, x.host.data(), x.host.size());
      ptrs.push_back(p);
      views.push_back(MakeView(p, x.t, x.shape));
    }
    fn(d, views);
    d.Synchronize();
    std::vector<std::vector<uint8_t>> out(tensors_.size());
    for (size_t i = 0; i < tensors_.size(); ++i) {
      out[i].resize(tensors_[i].host.size());
      d.CopyToHost(out[i].data(), ptrs[i], out[i].size());
      d.Free(ptrs[i]);
    }
    return out;
  }

  static float At(const T& x, const std::vector<uint8_t>& b, int64_t i) {
    if (x.t == DType::kBF16) return BF16ToF32(reinterpret_cast<const uint16_t*>(b.data())[i]);
    if (x.t == DType::kI32)
      return static_cast<float>(reinterpret_cast<const int32_t*>(b.data())[i]);
    return reinterpret_cast<const float*>(b.data())[i];
  }

  static ::testing::AssertionResult Close(const T& x, const std::vector<uint8_t>& got,
                                          const std::vector<uint8_t>& want) {
    double mx = 0;
    for (int64_t i = 0; i < x.numel; ++i) mx = std::max(mx, std::fabs(double{At(x, want, i)}));
    for (int64_t i = 0; i < x.numel; ++i) {
      const double g = At(x, got, i), w = At(x, want, i);
      const double lim = x.tol.rtol * std::fabs(w) + x.tol.atol * std::max(mx, 1e-6);
      if (!(std::fabs(g - w) <= lim)) {  // also catches NaN
        return ::testing::AssertionFailure()
               << "element " << i << " of " << x.numel << ": cuda " << g << ", cpu " << w
               << " (limit " << lim << ", max |cpu| " << mx << ")";
      }
    }
    return ::testing::AssertionSuccess();
  }

  std::string name_;
  std::mt19937 gen_{12345};
  std::vector<T> tensors_;
};

}  // namespace anvil::kernels::testing

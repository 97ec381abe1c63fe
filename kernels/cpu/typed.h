// Helpers for the CPU op families over typed views: scratch buffers from the
// device's caching allocator, and widening BF16 operands to fp32 so that the
// fp32 kernels (ops.h) serve every dtype with the same arithmetic. A BF16
// result is the fp32 kernel's result on the widened inputs, rounded once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels::cpu {

// A device buffer for the scope (the caching allocator makes this cheap).
class Scratch {
 public:
  Scratch(Device& d, size_t bytes) : d_(d), p_(d.Alloc(bytes)) {}
  ~Scratch() { d_.Free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* f32() const { return static_cast<float*>(p_); }
  void* get() const { return p_; }

 private:
  Device& d_;
  void* p_;
};

inline int Threads(const Device& d) { return d.threads() > 0 ? d.threads() : 1; }

// An fp32 copy of v when it is not fp32 already (then v's own memory).
class F32In {
 public:
  F32In(Device& d, const TensorView& v) {
    if (!v.present()) return;
    if (v.dtype == DType::kF32) {
      ptr_ = v.as<float>();
      return;
    }
    const size_t n = static_cast<size_t>(v.numel());
    buf_ = static_cast<float*>(d.Alloc(n * sizeof(float)));
    d_ = &d;
    Convert(Threads(d), buf_, DType::kF32, v.data, v.dtype, n);
    ptr_ = buf_;
  }
  ~F32In() {
    if (buf_ != nullptr) d_->Free(buf_);
  }
  F32In(const F32In&) = delete;
  F32In& operator=(const F32In&) = delete;
  const float* get() const { return ptr_; }

 private:
  const float* ptr_ = nullptr;
  float* buf_ = nullptr;
  Device* d_ = nullptr;
};

// An fp32 output for v: v itself when fp32; else a scratch buffer, zeroed
// (accumulate) or not, written back to v by Finish (accumulate: v += buf).
class F32Out {
 public:
  F32Out(Device& d, const TensorView& v, bool accumulate) : d_(d), v_(v), acc_(accumulate) {
    if (!v.present()) return;
    if (v.dtype == DType::kF32) {
      ptr_ = v.as<float>();
      return;
    }
    const size_t n = static_cast<size_t>(v.numel());
    buf_ = static_cast<float*>(d.Alloc(n * sizeof(float)));
    if (acc_) ParallelMemset(Threads(d), buf_, 0, n * sizeof(float));
    ptr_ = buf_;
  }
  ~F32Out() {
    if (buf_ != nullptr) d_.Free(buf_);
  }
  F32Out(const F32Out&) = delete;
  F32Out& operator=(const F32Out&) = delete;
  float* get() const { return ptr_; }
  void Finish();

 private:
  Device& d_;
  TensorView v_;
  bool acc_;
  float* ptr_ = nullptr;
  float* buf_ = nullptr;
};

// dst (F32|BF16) += src (fp32), n elements, nt threads; BF16 rounds once.
void AccumulateF32Into(int nt, void* dst, DType dst_type, const float* src, size_t n);

}  // namespace anvil::kernels::cpu

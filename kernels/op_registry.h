// The op registry: (device kind, op name) -> implementation, plus the dtypes
// it accepts. Ops are data, not vtable entries (the ggml idea): a family's
// free function (kernels/ops/*.h) finds its implementation here, and a model
// asks at construction whether the device has every op it will run, in the
// dtype it will run it (RequireOps), so a missing op is one clear error then
// rather than a failure mid-step.
//
// Each device's implementation registers its ops once, before the device is
// handed out (kernels/cpu/register_ops.cc, kernels/cuda/register_ops.cu).
// Op names are "<family>.<op>", e.g. "linear.forward".
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "kernels/device.h"

namespace anvil::kernels {

using ErasedFn = void (*)();

struct OpEntry {
  ErasedFn fn = nullptr;
  uint32_t dtypes = 0;  // bit (1 << DType) for each supported compute dtype
};

void RegisterOpErased(DeviceKind kind, std::string_view name, ErasedFn fn,
                      std::initializer_list<DType> dtypes);
const OpEntry* FindOp(DeviceKind kind, std::string_view name);
// Names of every op registered for `kind`, sorted (for error messages, docs).
std::vector<std::string> RegisteredOps(DeviceKind kind);

template <class Fn>
void RegisterOp(DeviceKind kind, std::string_view name, Fn* fn, std::initializer_list<DType> dtypes) {
  RegisterOpErased(kind, name, reinterpret_cast<ErasedFn>(fn), dtypes);
}

struct OpRequirement {
  std::string_view op;
  DType dtype;
};
// OK when `device` has every op in every listed dtype; otherwise one error
// naming the first op (and dtype) it lacks.
absl::Status RequireOps(const Device& device, std::initializer_list<OpRequirement> ops);
absl::Status RequireOps(const Device& device, const std::vector<OpRequirement>& ops);

// The per-call-site lookup the family functions use: resolved once per
// device kind, then a relaxed atomic load. An op missing at call time is a
// programming error (RequireOps should have caught it): abort with its name.
template <class Fn>
class OpHandle {
 public:
  explicit constexpr OpHandle(const char* name) : name_(name) {}
  Fn* Get(DeviceKind kind) const {
    std::atomic<Fn*>& slot = cache_[static_cast<int>(kind)];
    Fn* fn = slot.load(std::memory_order_relaxed);
    if (fn != nullptr) return fn;
    const OpEntry* e = FindOp(kind, name_);
    if (e == nullptr) {
      std::fprintf(stderr, "anvil: op %s is not implemented on %s\n", name_,
                   std::string(DeviceKindName(kind)).c_str());
      std::abort();
    }
    fn = reinterpret_cast<Fn*>(e->fn);
    slot.store(fn, std::memory_order_relaxed);
    return fn;
  }
  const char* name() const { return name_; }

 private:
  const char* name_;
  mutable std::atomic<Fn*> cache_[kNumDeviceKinds] = {};
};

}  // namespace anvil::kernels

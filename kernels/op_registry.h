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
//
// A kind may instead borrow every op of another kind through a runner
// (RegisterBorrowedKind): the stream-emulating test device runs the CPU
// implementations, each call handed to its runner, which enqueues it on the
// device's compute stream. Ops are then called with copies of their
// arguments (views and params structs are values); ops that return a value
// run to completion before the call returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
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
// The entry of `name` for `kind` (or for the kind it borrows from); null
// when there is none.
const OpEntry* FindOp(DeviceKind kind, std::string_view name);
// Names of every op registered for `kind`, sorted (for error messages, docs).
std::vector<std::string> RegisteredOps(DeviceKind kind);

template <class Fn>
void RegisterOp(DeviceKind kind, std::string_view name, Fn* fn, std::initializer_list<DType> dtypes) {
  RegisterOpErased(kind, name, reinterpret_cast<ErasedFn>(fn), dtypes);
}

// Runs one op call of a borrowing kind: `wait` asks it to return only once
// the call has run (the op returns a value the caller reads).
using OpRunner = void (*)(Device& d, std::function<void()> call, bool wait);
// Kind `kind` runs `from`'s implementations through `runner`. Idempotent.
void RegisterBorrowedKind(DeviceKind kind, DeviceKind from, OpRunner runner);

namespace internal {
// The runner of each kind (null: ops are called directly). Written once by
// RegisterBorrowedKind before a device of that kind exists.
inline std::atomic<OpRunner> op_runners[kNumDeviceKinds] = {};
}  // namespace internal

// What OpHandle::Get returns: a callable with the op's signature that calls
// the implementation directly, or hands the call to the kind's runner.
template <class Fn>
class OpCall;
template <class R, class... A>
class OpCall<R(Device&, A...)> {
 public:
  using Fn = R(Device&, A...);
  OpCall(Fn* fn, OpRunner runner) : fn_(fn), runner_(runner) {}
  R operator()(Device& d, A... a) const {
    if (runner_ == nullptr) return fn_(d, a...);
    if constexpr (std::is_void_v<R>) {
      Fn* fn = fn_;
      Device* dp = &d;
      runner_(d,
              [fn, dp, args = std::tuple<std::decay_t<A>...>(a...)] {
                std::apply([fn, dp](const auto&... x) { fn(*dp, x...); }, args);
              },
              false);
    } else {
      R r{};
      runner_(d, [&] { r = fn_(d, a...); }, true);
      return r;
    }
  }

 private:
  Fn* fn_;
  OpRunner runner_;
};

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
  OpCall<Fn> Get(DeviceKind kind) const {
    return OpCall<Fn>(Find(kind),
                      internal::op_runners[static_cast<int>(kind)].load(std::memory_order_acquire));
  }
  const char* name() const { return name_; }

 private:
  Fn* Find(DeviceKind kind) const {
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

  const char* name_;
  mutable std::atomic<Fn*> cache_[kNumDeviceKinds] = {};
};

}  // namespace anvil::kernels

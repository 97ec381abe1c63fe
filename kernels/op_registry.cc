#include "kernels/op_registry.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace anvil::kernels {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::pair<int, std::string>, OpEntry, std::less<>> ops;
  int borrows_from[kNumDeviceKinds] = {-1, -1, -1};
};

Registry& R() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

std::string_view DeviceKindName(DeviceKind k) {
  switch (k) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kCuda: return "cuda";
    case DeviceKind::kStreamTest: return "stream-test";
  }
  return "?";
}

void RegisterOpErased(DeviceKind kind, std::string_view name, ErasedFn fn,
                      std::initializer_list<DType> dtypes) {
  OpEntry e{fn, 0};
  for (DType d : dtypes) e.dtypes |= 1u << static_cast<int>(d);
  std::lock_guard<std::mutex> lock(R().mu);
  R().ops[{static_cast<int>(kind), std::string(name)}] = e;
}

void RegisterBorrowedKind(DeviceKind kind, DeviceKind from, OpRunner runner) {
  {
    std::lock_guard<std::mutex> lock(R().mu);
    R().borrows_from[static_cast<int>(kind)] = static_cast<int>(from);
  }
  internal::op_runners[static_cast<int>(kind)].store(runner, std::memory_order_release);
}

const OpEntry* FindOp(DeviceKind kind, std::string_view name) {
  std::lock_guard<std::mutex> lock(R().mu);
  int k = static_cast<int>(kind);
  if (R().borrows_from[k] >= 0) k = R().borrows_from[k];
  auto it = R().ops.find(std::pair<int, std::string>(k, std::string(name)));
  return it == R().ops.end() ? nullptr : &it->second;
}

std::vector<std::string> RegisteredOps(DeviceKind kind) {
  std::lock_guard<std::mutex> lock(R().mu);
  int k = static_cast<int>(kind);
  if (R().borrows_from[k] >= 0) k = R().borrows_from[k];
  std::vector<std::string> names;
  for (const auto& [key, e] : R().ops) {
    if (key.first == k) names.push_back(key.second);
  }
  return names;
}

absl::Status RequireOps(const Device& device, const std::vector<OpRequirement>& ops) {
  for (const OpRequirement& r : ops) {
    const OpEntry* e = FindOp(device.kind(), r.op);
    if (e == nullptr) {
      return absl::UnimplementedError(absl::StrCat("the ", std::string(DeviceKindName(device.kind())),
                                                   " device has no op ", std::string(r.op)));
    }
    if ((e->dtypes & (1u << static_cast<int>(r.dtype))) == 0) {
      return absl::UnimplementedError(absl::StrCat(
          "the ", std::string(DeviceKindName(device.kind())), " device has no ",
          std::string(DTypeName(r.dtype)), " version of op ", std::string(r.op)));
    }
  }
  return absl::OkStatus();
}

absl::Status RequireOps(const Device& device, std::initializer_list<OpRequirement> ops) {
  return RequireOps(device, std::vector<OpRequirement>(ops));
}

}  // namespace anvil::kernels

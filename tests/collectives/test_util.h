// Test helpers for collectives: run N ranks as threads over one HashStore,
// deterministic inputs per (case, rank, index), and dtype-generic buffers
// read and written as doubles.
// Invariants: values written through TypedBuffer::Set are exactly what the
// buffer holds (rounded once to the dtype), so references computed from
// Get() see the same inputs the collective saw.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "common/dtype.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "kernels/cpu/convert.h"
#include "runtime/store/hash_store.h"

namespace anvil::testing {

inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1).
inline double UnitValue(uint64_t seed, int rank, size_t i) {
  const uint64_t h = Mix(seed * 1000003ull + static_cast<uint64_t>(rank) * 7919ull + Mix(i));
  return static_cast<double>(h >> 11) * 0x1.0p-53 * 2.0 - 1.0;
}

// An input value for dtype: floats in [-1, 1), integers spanning the type
// (I64 beyond 32 bits) but small enough that a 4-rank sum cannot overflow.
inline double InputValue(DType dtype, uint64_t seed, int rank, size_t i) {
  const double u = UnitValue(seed, rank, i);
  switch (dtype) {
    case DType::kI32: return std::floor(u * 1e8);
    case DType::kI64: return std::floor(u * 1e15);
    case DType::kU8: return std::floor((u + 1.0) * 127.0);
    default: return u;
  }
}

class TypedBuffer {
 public:
  TypedBuffer(DType dtype, size_t n) : dtype_(dtype), n_(n), bytes_(n * DTypeSize(dtype) + 1) {}
  void* data() { return bytes_.data(); }
  size_t size() const { return n_; }
  DType dtype() const { return dtype_; }

  void Set(size_t i, double v) {
    uint8_t* p = bytes_.data() + i * DTypeSize(dtype_);
    switch (dtype_) {
      case DType::kF32: { float f = static_cast<float>(v); std::memcpy(p, &f, 4); break; }
      case DType::kBF16: {
        uint16_t h = kernels::F32ToBF16(static_cast<float>(v));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::kF16: {
        uint16_t h = kernels::F32ToF16(static_cast<float>(v));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::kI32: { int32_t x = static_cast<int32_t>(v); std::memcpy(p, &x, 4); break; }
      case DType::kI64: { int64_t x = static_cast<int64_t>(v); std::memcpy(p, &x, 8); break; }
      case DType::kU8: *p = static_cast<uint8_t>(v); break;
    }
  }

  double Get(size_t i) const {
    const uint8_t* p = bytes_.data() + i * DTypeSize(dtype_);
    switch (dtype_) {
      case DType::kF32: { float f; std::memcpy(&f, p, 4); return f; }
      case DType::kBF16: { uint16_t h; std::memcpy(&h, p, 2); return kernels::BF16ToF32(h); }
      case DType::kF16: { uint16_t h; std::memcpy(&h, p, 2); return kernels::F16ToF32(h); }
      case DType::kI32: { int32_t x; std::memcpy(&x, p, 4); return x; }
      case DType::kI64: { int64_t x; std::memcpy(&x, p, 8); return static_cast<double>(x); }
      case DType::kU8: return *p;
    }
    return 0;
  }
  int64_t GetInt(size_t i) const {
    const uint8_t* p = bytes_.data() + i * DTypeSize(dtype_);
    if (dtype_ == DType::kI64) { int64_t x; std::memcpy(&x, p, 8); return x; }
    return static_cast<int64_t>(Get(i));
  }
  const uint8_t* bytes() const { return bytes_.data(); }

 private:
  DType dtype_;
  size_t n_;
  std::vector<uint8_t> bytes_;  // +1 so that data() is never null
};

struct ThreadRanksOptions {
  absl::Duration timeout = absl::Seconds(20);
  std::string name = "pg";
};

// Runs fn(pg) for ranks 0..n-1, each on its own thread with its own
// GlooProcessGroup over one shared HashStore (loopback TCP).
inline void RunThreadRanks(int n, const std::function<void(ProcessGroup& pg)>& fn,
                           const ThreadRanksOptions& options = {}) {
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      auto pg = GlooProcessGroup::Create({.store = store, .rank = r, .size = n,
                                          .timeout = options.timeout, .name = options.name,
                                          .hostname = "127.0.0.1"});
      ASSERT_TRUE(pg.ok()) << pg.status();
      fn(**pg);
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace anvil::testing

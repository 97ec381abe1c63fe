// Reduction kernels. Plain loops over restrict-free pointers that GCC
// vectorises at -O3 (-march=native / AVX2); aliasing c == a is the common
// case (in-place accumulate), so nothing here assumes distinct buffers.
#include "runtime/collectives/reduce_kernels.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/convert.h"

namespace anvil::collectives_internal {
namespace {

template <typename T>
void SumT(void* c_, const void* a_, const void* b_, size_t n) {
  T* c = static_cast<T*>(c_);
  const T* a = static_cast<const T*>(a_);
  const T* b = static_cast<const T*>(b_);
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    for (size_t i = 0; i < n; ++i) c[i] = static_cast<T>(static_cast<U>(a[i]) + static_cast<U>(b[i]));
  } else {
    for (size_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
  }
}

template <typename T>
void MaxT(void* c_, const void* a_, const void* b_, size_t n) {
  T* c = static_cast<T*>(c_);
  const T* a = static_cast<const T*>(a_);
  const T* b = static_cast<const T*>(b_);
  for (size_t i = 0; i < n; ++i) c[i] = a[i] < b[i] ? b[i] : a[i];
}

// bf16/fp16: widen a block to fp32, combine, narrow. Blocks keep the
// temporaries in L1 and let the conversions vectorise.
constexpr size_t kBlock = 256;

template <bool kBf16, bool kMax>
void Half(void* c_, const void* a_, const void* b_, size_t n) {
  uint16_t* c = static_cast<uint16_t*>(c_);
  const uint16_t* a = static_cast<const uint16_t*>(a_);
  const uint16_t* b = static_cast<const uint16_t*>(b_);
  float fa[kBlock];
  float fb[kBlock];
  for (size_t off = 0; off < n; off += kBlock) {
    const size_t m = std::min(kBlock, n - off);
    if constexpr (kBf16) {
      kernels::ConvertBF16ToF32(fa, a + off, m);
      kernels::ConvertBF16ToF32(fb, b + off, m);
    } else {
      kernels::ConvertF16ToF32(fa, a + off, m);
      kernels::ConvertF16ToF32(fb, b + off, m);
    }
    if constexpr (kMax) {
      for (size_t i = 0; i < m; ++i) fa[i] = fa[i] < fb[i] ? fb[i] : fa[i];
    } else {
      for (size_t i = 0; i < m; ++i) fa[i] += fb[i];
    }
    if constexpr (kBf16) {
      kernels::ConvertF32ToBF16(c + off, fa, m);
    } else {
      kernels::ConvertF32ToF16(c + off, fa, m);
    }
  }
}

template <typename T>
void DivideT(T* data, size_t n, int divisor) {
  const T d = static_cast<T>(divisor);
  for (size_t i = 0; i < n; ++i) data[i] = data[i] / d;
}

template <bool kBf16>
void DivideHalf(uint16_t* data, size_t n, int divisor) {
  float f[kBlock];
  const float d = static_cast<float>(divisor);
  for (size_t off = 0; off < n; off += kBlock) {
    const size_t m = std::min(kBlock, n - off);
    if constexpr (kBf16) {
      kernels::ConvertBF16ToF32(f, data + off, m);
    } else {
      kernels::ConvertF16ToF32(f, data + off, m);
    }
    for (size_t i = 0; i < m; ++i) f[i] /= d;
    if constexpr (kBf16) {
      kernels::ConvertF32ToBF16(data + off, f, m);
    } else {
      kernels::ConvertF32ToF16(data + off, f, m);
    }
  }
}

}  // namespace

absl::Status CheckReducible(DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::kF32:
    case DType::kBF16:
    case DType::kF16:
    case DType::kI32:
    case DType::kI64:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "reduction ", std::string(ReduceOpName(op)), " is not defined for dtype ",
          std::string(DTypeName(dtype)), " (reductions take F32, BF16, F16, I32, I64)"));
  }
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
    case ReduceOp::kMax:
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown ReduceOp");
}

ReduceFn GetReduceFn(DType dtype, ReduceOp op) {
  const bool max = op == ReduceOp::kMax;
  switch (dtype) {
    case DType::kF32: return max ? &MaxT<float> : &SumT<float>;
    case DType::kI32: return max ? &MaxT<int32_t> : &SumT<int32_t>;
    case DType::kI64: return max ? &MaxT<int64_t> : &SumT<int64_t>;
    case DType::kBF16: return max ? &Half<true, true> : &Half<true, false>;
    case DType::kF16: return max ? &Half<false, true> : &Half<false, false>;
    default: return nullptr;
  }
}

void DivideInPlace(void* data, size_t n, DType dtype, int divisor) {
  switch (dtype) {
    case DType::kF32: DivideT(static_cast<float*>(data), n, divisor); break;
    case DType::kI32: DivideT(static_cast<int32_t*>(data), n, divisor); break;
    case DType::kI64: DivideT(static_cast<int64_t*>(data), n, divisor); break;
    case DType::kBF16: DivideHalf<true>(static_cast<uint16_t*>(data), n, divisor); break;
    case DType::kF16: DivideHalf<false>(static_cast<uint16_t*>(data), n, divisor); break;
    default: break;
  }
}

void DivideFloats(float* data, size_t n, int divisor) { DivideT(data, n, divisor); }

}  // namespace anvil::collectives_internal

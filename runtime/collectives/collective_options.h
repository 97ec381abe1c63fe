// Options of every ProcessGroup collective, and the reduction vocabulary.
// Every field has a default member initialiser: GCC's
// -Wmissing-field-initializers flags designated initialisers that skip a
// field without one.
// Invariants: every rank of a group passes the same options (dtype, op,
// counts, root) to the same collective; a zero timeout means the group's
// default; `stream` is a cudaStream_t for the NCCL backend and ignored by CPU
// backends. Options are plain aggregates so call sites can use designated
// initialisers: pg.AllReduce(buf, n, {.dtype = DType::kBF16, .op = ReduceOp::kAvg}).
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/time/time.h"
#include "common/dtype.h"

namespace anvil {

enum class ReduceOp : uint8_t {
  kSum = 0,
  // Sum divided by the group size: floats scale the fp32/fp64 sum by 1/N
  // before the final rounding; integers divide, truncating toward zero.
  kAvg = 1,
  kMax = 2,
};

constexpr std::string_view ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
  }
  return "?";
}

// How sums of bf16/fp16 accumulate (fp32, integers and max are unaffected:
// max is exact in any dtype).
enum class Accumulation : uint8_t {
  // Widen the buffer into an fp32 scratch owned by the group, run the
  // collective in fp32, narrow the result once with round-to-nearest-even.
  // The result is the fp32 sum of the inputs rounded once to the dtype (the
  // fp32 sum itself carries at most N-1 fp32 roundings, 2^-24 each).
  // Costs 2x the wire bytes and a scratch of 4 bytes per element.
  kFloat32 = 0,
  // Reduce in the dtype on the wire: every pairwise step computes in fp32
  // and rounds to the dtype, so a sum over N ranks is rounded up to N-1
  // times (relative error <= (N-1) * 2^-8 for bf16, (N-1) * 2^-11 for fp16,
  // of the sum of magnitudes). Half the bytes of kFloat32; what NCCL does.
  kWireDType = 1,
};

struct AllReduceOptions {
  DType dtype = DType::kF32;
  ReduceOp op = ReduceOp::kSum;
  Accumulation accumulation = Accumulation::kFloat32;
  void* stream = nullptr;
  absl::Duration timeout = absl::ZeroDuration();
};

struct ReduceScatterOptions {
  DType dtype = DType::kF32;
  ReduceOp op = ReduceOp::kSum;
  Accumulation accumulation = Accumulation::kFloat32;
  void* stream = nullptr;
  absl::Duration timeout = absl::ZeroDuration();
};

struct AllGatherOptions {
  DType dtype = DType::kF32;
  void* stream = nullptr;
  absl::Duration timeout = absl::ZeroDuration();
};

struct BroadcastOptions {
  DType dtype = DType::kF32;
  int root = 0;
  void* stream = nullptr;
  absl::Duration timeout = absl::ZeroDuration();
};

struct BarrierOptions {
  absl::Duration timeout = absl::ZeroDuration();
};

// Split a group like MPI_Comm_split: ranks passing the same `color` form one
// new group, ordered by (`key`, parent rank). Every rank of the parent calls
// Split with its own color (>= 0); Split is a collective of the parent and
// is ordered with its other collectives.
struct SplitOptions {
  int color = 0;
  int key = 0;
  // Group bootstrap (store exchange and connection set-up) deadline; zero:
  // the parent's default timeout.
  absl::Duration timeout = absl::ZeroDuration();
};

}  // namespace anvil

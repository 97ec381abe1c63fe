// Arguments and receive scratch shared by the in-place reduce-scatter
// algorithms of the Gloo backend (ring_reduce_scatter.h for bandwidth,
// direct_reduce_scatter.h for latency).
// Invariants: `data` holds context->size chunks of `chunk_elems` elements of
// `elem_size` bytes; on return chunk `rank` holds the reduction over ranks
// and the other chunks are unspecified. The scratch's registered buffer
// holds a reference to the Gloo context: reset() it before dropping the
// context.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "gloo/common/error.h"
#include "gloo/context.h"
#include "gloo/transport/unbound_buffer.h"
#include "runtime/collectives/reduce_kernels.h"

namespace anvil::collectives_internal {

// Slot prefixes of our own algorithms; Gloo's built-ins use 0x01..0x08.
constexpr uint8_t kRingReduceScatterSlotPrefix = 0x41;
constexpr uint8_t kDirectReduceScatterSlotPrefix = 0x42;
constexpr uint8_t kHalvingReduceScatterSlotPrefix = 0x43;
constexpr size_t kDefaultMaxSegmentBytes = 1 << 20;
constexpr size_t kDefaultMinPipelinedSegmentBytes = 64 << 10;

struct ReduceScatterArgs {
  void* data = nullptr;
  size_t chunk_elems = 0;
  size_t elem_size = 0;
  ReduceFn reduce = nullptr;
  uint32_t tag = 0;
  std::chrono::milliseconds timeout{0};
  // Ring only: segment bounds (see ring_reduce_scatter.h).
  size_t max_segment_bytes = kDefaultMaxSegmentBytes;
  size_t min_pipelined_segment_bytes = kDefaultMinPipelinedSegmentBytes;
};

// Receive scratch reused across calls: the bytes and Gloo's registration of
// them (re-registered when it has to grow).
struct ReduceScatterScratch {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gloo::transport::UnboundBuffer> buffer;

  void reset() {
    buffer.reset();
    bytes.clear();
  }

  // At least `n` bytes, registered with `context`.
  gloo::transport::UnboundBuffer* Reserve(gloo::Context& context, size_t n) {
    if (bytes.size() < n) {
      buffer.reset();
      bytes.resize(n);
    }
    if (buffer == nullptr) buffer = context.createUnboundBuffer(bytes.data(), bytes.size());
    return buffer.get();
  }
};

// Gloo's waitRecv/waitSend return false when the pair was aborted.
inline void CheckIo(bool ok, const char* what) {
  if (!ok) throw gloo::IoException(what);
}

}  // namespace anvil::collectives_internal

// StreamTestDevice: a Device for tests only, which emulates an asynchronous
// accelerator on the CPU so that a missing event wait shows up as a wrong
// result in CPU CI.
//
// Each stream is a worker thread that runs the work enqueued on it in order,
// sleeping a random delay (up to the stream's max_delay_us) before each item.
// Ops are the CPU implementations, borrowed through the op registry
// (RegisterBorrowedKind): a call from the host is enqueued on the compute
// stream and returns at once; an op that returns a value waits for its turn.
// Memset and Copy are enqueued too; CopyToHost and CopyFromHost wait for the
// compute stream to reach them. RecordEvent(s) marks the number of items
// enqueued on s; the event is done when s has run that many; WaitEvent(t, e)
// enqueues on t an item that blocks t's thread until e is done. HostFunc
// enqueues the function itself. Work that a stream's own thread issues
// (an op calling another op) runs inline.
//
// Allocation: host calls (issuing work) use one caching allocator, work
// running on a stream's thread (an op's scratch) another, as on a GPU where
// kernels take no memory from the host's stream-ordered pool: a block the
// host freed is reused only by work the host issues later.
//
// Invariants: items of one stream run one at a time, in enqueue order; no
// item of t enqueued after WaitEvent(t, e) starts before e is done; memory
// is host memory (64-byte aligned, through the caching allocator), so tests
// may compare it with the CPU device's bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/device.h"

namespace anvil::kernels::testing {

struct StreamTestOptions {
  int threads = 1;  // OpenMP threads of every op (as the CPU device's)
  // Each stream's items wait a uniform random [0, max] microseconds first.
  // Index = StreamId (0: compute); streams beyond the list use the last.
  std::vector<int> max_delay_us = {0, 0};
  uint64_t seed = 1;
};

std::unique_ptr<Device> MakeStreamTestDevice(const StreamTestOptions& options = {});

}  // namespace anvil::kernels::testing

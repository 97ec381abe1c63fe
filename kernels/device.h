// Device: memory, streams, events and the op registry's key — what a model
// and the sharded runtime need from a processor, and nothing about ops.
//
// Ops are free functions in families (kernels/ops/*.h) that look their
// implementation up by (device kind, op name) in the op registry; a Device
// only says which kind it is. Invariants every device keeps:
//  - Alloc returns 64-byte aligned memory from a caching allocator: Free
//    keeps the block for the next Alloc of a similar size, so steady-state
//    steps never reach the system allocator (cudaMalloc, mmap).
//  - Work is ordered on the device's compute stream; RecordEvent marks the
//    stream's current point and WaitEvent makes it wait for one. The CPU
//    device runs every op to completion before returning, so there its
//    events are complete when recorded.
//  - One device is driven by one thread at a time (like one CUDA stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kernels/caching_allocator.h"
#include "common/dtype.h"

namespace anvil::kernels {

enum class DeviceKind : uint8_t { kCpu = 0, kCuda = 1 };
inline constexpr int kNumDeviceKinds = 2;
std::string_view DeviceKindName(DeviceKind k);

// A point on a device's compute stream.
class Event {
 public:
  virtual ~Event() = default;
  virtual bool Done() const = 0;  // completed on the device
  virtual void Wait() const = 0;  // host blocks until completed
};

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceKind kind() const = 0;
  // e.g. "cpu: AMD EPYC 9B14, 2 threads, oneDNN isa avx512_core_bf16".
  virtual std::string Describe() const = 0;
  // CPU: the OpenMP threads every op uses. Other devices: 0.
  virtual int threads() const { return 0; }

  // ---- memory -------------------------------------------------------------
  void* Alloc(size_t bytes) { return allocator().Alloc(bytes); }  // aborts on OOM
  void Free(void* p) { allocator().Free(p); }
  CachingAllocator::Stats memory_stats() const { return allocator().stats(); }
  void EmptyCache() { allocator().EmptyCache(); }

  virtual void Memset(void* ptr, int value, size_t bytes) = 0;
  virtual void Copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void CopyToHost(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void CopyFromHost(void* dst, const void* host_src, size_t bytes) = 0;

  // ---- ordering -----------------------------------------------------------
  virtual void Synchronize() = 0;
  virtual std::unique_ptr<Event> RecordEvent() = 0;
  virtual void WaitEvent(const Event& e) = 0;  // the compute stream waits

 protected:
  virtual CachingAllocator& allocator() const = 0;
};

// The CPU device: host memory, OpenMP threads (num_threads <= 0: all cores).
std::unique_ptr<Device> MakeCpuDevice(int num_threads = 0);

}  // namespace anvil::kernels

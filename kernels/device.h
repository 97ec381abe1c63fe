// Device: memory, streams, events and the op registry's key — what a model
// and the sharded runtime need from a processor, and nothing about ops.
//
// Ops are free functions in families (kernels/ops/*.h) that look their
// implementation up by (device kind, op name) in the op registry; a Device
// only says which kind it is. Invariants every device keeps:
//  - Alloc returns 64-byte aligned memory from a caching allocator: Free
//    keeps the block for the next Alloc of a similar size, so steady-state
//    steps never reach the system allocator (cudaMalloc, mmap).
//  - Work is ordered on streams. Every op, Memset and Copy runs on the
//    compute stream (kComputeStream); NewStream adds further streams (the
//    sharded engine runs its collectives on one). Streams run concurrently;
//    the only order between two of them is an event: RecordEvent(s) marks
//    stream s's current point, WaitEvent(t, e) makes stream t's later work
//    wait until that point has run (the host does not wait). HostFunc puts a
//    host function in a stream's order (a CPU collective on the comm
//    stream). The CPU device runs all work to completion before returning
//    (asynchronous() is false), so there events are complete when recorded.
//  - CopyToHost and CopyFromHost return once the host buffer may be used:
//    they wait for the compute stream's earlier work.
//  - One device is driven by one host thread at a time (like a CUDA
//    stream); its streams may be backed by other threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kernels/caching_allocator.h"
#include "common/dtype.h"

namespace anvil::kernels {

// kStreamTest: the stream-emulating test device (kernels/testing/), which
// runs the CPU ops on per-stream threads; never used outside tests.
enum class DeviceKind : uint8_t { kCpu = 0, kCuda = 1, kStreamTest = 2 };
inline constexpr int kNumDeviceKinds = 3;
std::string_view DeviceKindName(DeviceKind k);

// A stream of a device: 0 is the compute stream, others come from NewStream.
using StreamId = int;
inline constexpr StreamId kComputeStream = 0;

// A point on one of a device's streams. It may outlive nothing: destroying
// an Event never cancels or blocks work that waits for it.
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

  // ---- streams and ordering ---------------------------------------------
  // Whether work may still run after the call that issued it returns.
  virtual bool asynchronous() const { return false; }
  // A new stream, valid for the device's lifetime.
  virtual StreamId NewStream() = 0;
  // The host waits until every stream has run all work issued to it.
  virtual void Synchronize() = 0;
  virtual std::unique_ptr<Event> RecordEvent(StreamId s) = 0;
  // Stream s's later work waits until `e` has completed (no host wait).
  virtual void WaitEvent(StreamId s, const Event& e) = 0;
  // Runs `fn` on a host thread when stream s reaches this point; the
  // stream's later work waits for it to return. fn may block (on a CPU
  // collective, say) but must not issue work to this device.
  virtual void HostFunc(StreamId s, std::function<void()> fn) = 0;
  // Stream s's native handle (cudaStream_t) for libraries that take one
  // (NCCL); null where there is none.
  virtual void* native_stream(StreamId) { return nullptr; }
  // The compute stream's shorthands.
  std::unique_ptr<Event> RecordEvent() { return RecordEvent(kComputeStream); }
  void WaitEvent(const Event& e) { WaitEvent(kComputeStream, e); }

 protected:
  virtual CachingAllocator& allocator() const = 0;
};

// The CPU device: host memory, OpenMP threads (num_threads <= 0: all cores).
// Every stream is the calling thread: work and host functions run at once.
std::unique_ptr<Device> MakeCpuDevice(int num_threads = 0);

}  // namespace anvil::kernels

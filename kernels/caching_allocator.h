// CachingAllocator: size-binned free lists over a raw allocator, so that the
// buffers a training step allocates and frees (gathered parameters, gradient
// buckets) are reused instead of returned to the system every time.
//
// Bins are powers of two from 512 bytes, with 4 sub-bins per power above
// 1 MiB (at most 25% slack). A freed block goes back to its bin; Alloc takes
// the smallest cached block of its bin. EmptyCache returns every cached
// block. Thread-safe (one mutex; the hot path is a vector pop).
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace anvil::kernels {

class CachingAllocator {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // returns null on failure
  using RawFree = std::function<void(void*)>;
  struct Stats {
    size_t in_use_bytes = 0;    // handed out (rounded sizes)
    size_t cached_bytes = 0;    // held in free lists
    size_t peak_in_use_bytes = 0;
    size_t raw_allocs = 0;      // calls that reached the raw allocator
    size_t allocs = 0;
  };

  CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, const char* what);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* Alloc(size_t bytes);  // aborts with one line naming `what` on OOM
  void Free(void* p);         // null is a no-op
  void EmptyCache();
  Stats stats() const;

  // The size a request of `bytes` is rounded to (its bin's block size).
  static size_t RoundSize(size_t bytes);

 private:
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  const char* what_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // block size -> blocks
  std::unordered_map<void*, size_t> live_;               // block -> size
  Stats stats_;
};

}  // namespace anvil::kernels

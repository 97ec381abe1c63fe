#include "kernels/caching_allocator.h"

#include <bit>
#include <cstdio>
#include <cstdlib>

namespace anvil::kernels {

CachingAllocator::CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, const char* what)
    : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)), what_(what) {}

CachingAllocator::~CachingAllocator() {
  EmptyCache();
  // Blocks still live at destruction belong to callers that outlived us:
  // release them too rather than leak.
  for (auto& [p, size] : live_) raw_free_(p);
}

size_t CachingAllocator::RoundSize(size_t bytes) {
  if (bytes <= 512) return 512;
  const size_t pow = std::bit_ceil(bytes);
  if (pow <= (size_t{1} << 20)) return pow;
  const size_t step = pow / 8;  // 4 bins between pow/2 and pow
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::Alloc(size_t bytes) {
  const size_t size = RoundSize(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.allocs;
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= size;
      stats_.in_use_bytes += size;
      stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
      live_[p] = size;
      return p;
    }
  }
  void* p = raw_alloc_(size);
  if (p == nullptr) {
    EmptyCache();  // retry once with the cache returned
    p = raw_alloc_(size);
  }
  if (p == nullptr) {
    std::fprintf(stderr, "anvil: out of %s memory allocating %zu bytes\n", what_, size);
    std::abort();
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.raw_allocs;
  stats_.in_use_bytes += size;
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  live_[p] = size;
  return p;
}

void CachingAllocator::Free(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) {
    std::fprintf(stderr, "anvil: %s Free of a pointer this allocator did not hand out\n", what_);
    std::abort();
  }
  const size_t size = it->second;
  live_.erase(it);
  stats_.in_use_bytes -= size;
  stats_.cached_bytes += size;
  free_[size].push_back(p);
}

void CachingAllocator::EmptyCache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) raw_free_(p);
    stats_.cached_bytes -= size * blocks.size();
    blocks.clear();
  }
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace anvil::kernels

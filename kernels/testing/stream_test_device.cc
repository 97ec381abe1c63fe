// StreamTestDevice (see the header): per-stream worker threads with random
// delays, events as counts of a stream's completed items.
#include "kernels/testing/stream_test_device.h"

#include <omp.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/op_registry.h"

namespace anvil::kernels::testing {
namespace {

// The device whose stream the calling thread is running, if any: work it
// issues (an op's implementation calling another op, Memset, Copy) runs
// inline, in the order of the item that issued it.
thread_local const Device* tls_running_for = nullptr;

class Worker {
 public:
  Worker(const Device* owner, int max_delay_us, uint64_t seed)
      : owner_(owner), max_delay_us_(max_delay_us), rng_(seed), thread_([this] { Loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Returns the item's sequence number (1-based).
  uint64_t Enqueue(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
    cv_.notify_all();
    return ++enqueued_;
  }
  uint64_t enqueued() {
    std::lock_guard<std::mutex> lock(mu_);
    return enqueued_;
  }
  bool Done(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    return done_ >= seq;
  }
  void WaitFor(uint64_t seq) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_ >= seq; });
  }

 private:
  void Loop() {
    tls_running_for = owner_;
    std::uniform_int_distribution<int> delay(0, max_delay_us_);
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      if (max_delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay(rng_)));
      fn();
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++done_;
      }
      cv_.notify_all();
    }
  }

  const Device* owner_;
  const int max_delay_us_;
  std::mt19937_64 rng_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  uint64_t enqueued_ = 0;
  uint64_t done_ = 0;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the fields above exist
};

class StreamEvent final : public Event {
 public:
  StreamEvent(std::shared_ptr<Worker> w, uint64_t seq) : w_(std::move(w)), seq_(seq) {}
  bool Done() const override { return w_->Done(seq_); }
  void Wait() const override { w_->WaitFor(seq_); }
  const std::shared_ptr<Worker>& worker() const { return w_; }
  uint64_t seq() const { return seq_; }

 private:
  std::shared_ptr<Worker> w_;
  uint64_t seq_;
};

void* AlignedAlloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  return std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
}

class StreamTestDevice final : public Device {
 public:
  explicit StreamTestDevice(const StreamTestOptions& o)
      : options_(o),
        alloc_(AlignedAlloc, [](void* p) { std::free(p); }, "stream-test"),
        exec_alloc_(AlignedAlloc, [](void* p) { std::free(p); }, "stream-test scratch") {
    if (options_.max_delay_us.empty()) options_.max_delay_us = {0};
    if (options_.threads < 1) options_.threads = 1;
    NewStream();  // the compute stream
  }
  ~StreamTestDevice() override { Synchronize(); }

  DeviceKind kind() const override { return DeviceKind::kStreamTest; }
  std::string Describe() const override {
    return "stream-test: CPU ops on per-stream threads, " + std::to_string(options_.threads) +
           " threads";
  }
  int threads() const override { return options_.threads; }
  bool asynchronous() const override { return true; }

  void Memset(void* ptr, int value, size_t bytes) override {
    Run([=] { std::memset(ptr, value, bytes); });
  }
  void Copy(void* dst, const void* src, size_t bytes) override {
    Run([=] { std::memmove(dst, src, bytes); });
  }
  void CopyToHost(void* host_dst, const void* src, size_t bytes) override {
    Run([=] { std::memcpy(host_dst, src, bytes); }, /*wait=*/true);
  }
  void CopyFromHost(void* dst, const void* host_src, size_t bytes) override {
    Run([=] { std::memcpy(dst, host_src, bytes); }, /*wait=*/true);
  }

  using Device::RecordEvent;
  using Device::WaitEvent;
  StreamId NewStream() override {
    const size_t i = workers_.size();
    const int delay = options_.max_delay_us[std::min(i, options_.max_delay_us.size() - 1)];
    workers_.push_back(std::make_shared<Worker>(this, delay, options_.seed * 1000003u + i));
    return static_cast<StreamId>(i);
  }
  void Synchronize() override {
    for (auto& w : workers_) w->WaitFor(w->enqueued());
  }
  std::unique_ptr<Event> RecordEvent(StreamId s) override {
    const std::shared_ptr<Worker>& w = worker(s);
    return std::make_unique<StreamEvent>(w, w->enqueued());
  }
  void WaitEvent(StreamId s, const Event& e) override {
    const auto& se = static_cast<const StreamEvent&>(e);
    if (se.worker() == worker(s)) return;  // a stream is ordered with itself
    worker(s)->Enqueue([w = se.worker(), seq = se.seq()] { w->WaitFor(seq); });
  }
  void HostFunc(StreamId s, std::function<void()> fn) override { worker(s)->Enqueue(std::move(fn)); }

  // The op runner: enqueue on the compute stream, inline on its own thread.
  void Run(std::function<void()> fn, bool wait = false) {
    if (tls_running_for == this) {
      fn();
      return;
    }
    const uint64_t seq = workers_[0]->Enqueue(std::move(fn));
    if (wait) workers_[0]->WaitFor(seq);
  }

 protected:
  // Op implementations allocate scratch while they run, on a stream's
  // thread; host code allocates when it issues work. Sharing one pool would
  // let an op's scratch take a block the host freed while ops queued after
  // it still read it (on a GPU, kernels never allocate), so running work
  // gets its own pool.
  CachingAllocator& allocator() const override {
    return tls_running_for == this ? exec_alloc_ : alloc_;
  }

 private:
  const std::shared_ptr<Worker>& worker(StreamId s) const {
    if (s < 0 || static_cast<size_t>(s) >= workers_.size()) {
      std::fprintf(stderr, "anvil: stream-test device has no stream %d\n", s);
      std::abort();
    }
    return workers_[s];
  }

  StreamTestOptions options_;
  mutable CachingAllocator alloc_;
  mutable CachingAllocator exec_alloc_;  // allocations made by running work
  std::vector<std::shared_ptr<Worker>> workers_;  // destroyed first: drains and joins
};

void RunOp(Device& d, std::function<void()> call, bool wait) {
  static_cast<StreamTestDevice&>(d).Run(std::move(call), wait);
}

}  // namespace

std::unique_ptr<Device> MakeStreamTestDevice(const StreamTestOptions& options) {
  cpu::RegisterCpuOps();
  RegisterBorrowedKind(DeviceKind::kStreamTest, DeviceKind::kCpu, &RunOp);
  cpu::SetBlasThreads(options.threads < 1 ? 1 : options.threads);
  return std::make_unique<StreamTestDevice>(options);
}

}  // namespace anvil::kernels::testing

// Abortable Gloo transport implementation: subclasses of Gloo's tcp Context,
// Pair and UnboundBuffer (the extension points Gloo's own TLS transport
// uses) plus a Device that hands out those contexts.
#include "runtime/collectives/gloo/abortable_transport.h"

#include <chrono>
#include <exception>
#include <utility>
#include <vector>

#include "gloo/common/error.h"
#include "gloo/transport/device.h"
#include "gloo/transport/tcp/context.h"
#include "gloo/transport/tcp/device.h"
#include "gloo/transport/tcp/pair.h"
#include "gloo/transport/tcp/unbound_buffer.h"

namespace anvil::collectives_internal {
namespace {

namespace tcp = gloo::transport::tcp;

std::string Describe(const std::exception_ptr& ex) {
  try {
    std::rethrow_exception(ex);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

// An unbound buffer that belongs to an AbortState: registered for its
// lifetime, and every operation on it fails once the state is aborted.
class AbortableBuffer final : public tcp::UnboundBuffer {
 public:
  AbortableBuffer(const std::shared_ptr<tcp::Context>& context, void* ptr, size_t size,
                  std::shared_ptr<AbortState> state)
      : tcp::UnboundBuffer(context, ptr, size), state_(std::move(state)) {
    state_->Add(this);
  }
  ~AbortableBuffer() override { state_->Remove(this); }

  bool waitRecv(int* rank, std::chrono::milliseconds timeout) override {
    ThrowIfAborted();
    const bool done = tcp::UnboundBuffer::waitRecv(rank, timeout);
    ThrowIfAborted();  // an abort wakes the wait with `false`: make it an error
    return done;
  }
  bool waitSend(int* rank, std::chrono::milliseconds timeout) override {
    ThrowIfAborted();
    const bool done = tcp::UnboundBuffer::waitSend(rank, timeout);
    ThrowIfAborted();
    return done;
  }
  void send(int dst, uint64_t slot, size_t offset, size_t nbytes) override {
    ThrowIfAborted();
    tcp::UnboundBuffer::send(dst, slot, offset, nbytes);
  }
  void recv(int src, uint64_t slot, size_t offset, size_t nbytes) override {
    ThrowIfAborted();
    tcp::UnboundBuffer::recv(src, slot, offset, nbytes);
  }
  void recv(std::vector<int> srcs, uint64_t slot, size_t offset, size_t nbytes) override {
    ThrowIfAborted();
    tcp::UnboundBuffer::recv(std::move(srcs), slot, offset, nbytes);
  }

 private:
  void ThrowIfAborted() const {
    if (state_->aborted()) throw gloo::IoException(state_->reason());
  }

  const std::shared_ptr<AbortState> state_;
};

// A pair whose failure aborts its group. Gloo closes a pair on any error
// through signalException, which stores the exception and then calls the
// (virtual) changeState(CLOSED) with the pair's lock held.
class AbortablePair final : public tcp::Pair {
 public:
  AbortablePair(tcp::Context* context, tcp::Device* device, int peer,
                std::chrono::milliseconds timeout, std::shared_ptr<AbortState> state)
      : tcp::Pair(context, device, peer, timeout), abort_(std::move(state)) {}

 protected:
  void changeState(state next) noexcept override {
    // An orderly close (destructor, close()) sets no exception.
    if (next == CLOSED && state_ != CLOSED && ex_ != nullptr) {
      abort_->Abort("connection to rank " + std::to_string(rank_) + " lost: " + Describe(ex_));
    }
    tcp::Pair::changeState(next);
  }

 private:
  const std::shared_ptr<AbortState> abort_;
};

class AbortableContext final : public tcp::Context {
 public:
  AbortableContext(std::shared_ptr<tcp::Device> device, int rank, int size,
                   std::shared_ptr<AbortState> state)
      : tcp::Context(std::move(device), rank, size), state_(std::move(state)) {}

  std::unique_ptr<gloo::transport::Pair>& createPair(int peer) override {
    pairs_[peer] = std::make_unique<AbortablePair>(this, device_.get(), peer, getTimeout(), state_);
    return pairs_[peer];
  }

  std::unique_ptr<gloo::transport::UnboundBuffer> createUnboundBuffer(void* ptr,
                                                                      size_t size) override {
    return std::make_unique<AbortableBuffer>(shared_from_this(), ptr, size, state_);
  }

 private:
  const std::shared_ptr<AbortState> state_;
};

class AbortableDevice final : public gloo::transport::Device {
 public:
  AbortableDevice(std::shared_ptr<tcp::Device> tcp, std::shared_ptr<AbortState> state)
      : tcp_(std::move(tcp)), state_(std::move(state)) {}

  std::string str() const override { return tcp_->str(); }
  const std::string& getPCIBusID() const override { return tcp_->getPCIBusID(); }
  int getInterfaceSpeed() const override { return tcp_->getInterfaceSpeed(); }
  std::shared_ptr<gloo::transport::Context> createContext(int rank, int size) override {
    return std::make_shared<AbortableContext>(tcp_, rank, size, state_);
  }

 private:
  const std::shared_ptr<tcp::Device> tcp_;
  const std::shared_ptr<AbortState> state_;
};

}  // namespace

bool AbortState::Abort(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (aborted_.load(std::memory_order_relaxed)) return false;
  reason_ = reason;
  aborted_.store(true, std::memory_order_release);
  // Each registered buffer's own lock is taken inside abortWait*.
  for (gloo::transport::UnboundBuffer* b : buffers_) {
    b->abortWaitSend();
    b->abortWaitRecv();
  }
  return true;
}

std::string AbortState::reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reason_;
}

void AbortState::OpStarted() {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  op_started_ns_.store(now, std::memory_order_release);
}

void AbortState::Add(gloo::transport::UnboundBuffer* buffer) {
  std::lock_guard<std::mutex> lock(mu_);
  buffers_.insert(buffer);
}

void AbortState::Remove(gloo::transport::UnboundBuffer* buffer) {
  std::lock_guard<std::mutex> lock(mu_);
  buffers_.erase(buffer);
}

std::shared_ptr<gloo::transport::Device> MakeAbortableDevice(
    std::shared_ptr<gloo::transport::Device> tcp_device, std::shared_ptr<AbortState> state) {
  auto tcp = std::dynamic_pointer_cast<tcp::Device>(std::move(tcp_device));
  GLOO_ENFORCE(tcp != nullptr, "MakeAbortableDevice needs a Gloo TCP device");
  return std::make_shared<AbortableDevice>(std::move(tcp), std::move(state));
}

}  // namespace anvil::collectives_internal

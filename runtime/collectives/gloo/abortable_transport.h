// Abortable Gloo transport: Gloo's TCP context, pair and unbound buffer
// extended so that a process group can be aborted, and so that a peer
// connection that fails aborts its group at once (issue 14, item 2).
//
// Why Gloo alone is not enough: when a connection fails (EOF, reset, write
// error), tcp::Pair::signalException wakes the unbound buffers whose
// operation is still pending, but not the buffer of a send already handed to
// the socket (queued in the pair's tx_ because the peer stopped reading) nor
// the buffer of a receive already in progress (rx_). Their waitSend/waitRecv
// then sleeps until the collective's timeout: a broadcast root whose peer
// died mid-message waited the whole group timeout.
//
// Invariants: an AbortState is aborted at most once (the first reason
// wins). From then on every wait on one of the group's unbound buffers ends
// by throwing gloo::IoException(reason) (waits asleep at that moment are
// woken; later ones throw before sleeping), and every send or receive
// posted later throws the same. A pair that closes because of an error
// aborts its group synchronously, from whichever thread noticed (usually
// Gloo's device loop). Every wait is bounded: a wait without its own
// timeout uses the context's, which Connect sets to the group timeout. Lock
// order: pair, then AbortState, then buffer (Gloo's own order is pair, then
// buffer).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

namespace gloo::transport {
class Device;
class UnboundBuffer;
}  // namespace gloo::transport

namespace anvil::collectives_internal {

class AbortState {
 public:
  // Aborts (first call only; returns whether this call did it).
  bool Abort(const std::string& reason);
  bool aborted() const { return aborted_.load(std::memory_order_acquire); }
  std::string reason() const;

  // The executor brackets each collective with these, so that a watchdog
  // can tell a blocked group from an idle one. 0 when idle.
  void OpStarted();
  void OpFinished() { op_started_ns_.store(0, std::memory_order_release); }
  int64_t op_started_ns() const { return op_started_ns_.load(std::memory_order_acquire); }

  // Buffers register themselves for their lifetime (abortable_transport.cc).
  void Add(gloo::transport::UnboundBuffer* buffer);
  void Remove(gloo::transport::UnboundBuffer* buffer);

 private:
  std::atomic<bool> aborted_{false};
  std::atomic<int64_t> op_started_ns_{0};
  mutable std::mutex mu_;
  std::string reason_;
  std::unordered_set<gloo::transport::UnboundBuffer*> buffers_;
};

// A device for one group's gloo::rendezvous::Context::connectFullMesh:
// contexts it creates use `tcp_device` (a Gloo TCP device, possibly shared
// with other groups) and report to and obey `state`.
std::shared_ptr<gloo::transport::Device> MakeAbortableDevice(
    std::shared_ptr<gloo::transport::Device> tcp_device, std::shared_ptr<AbortState> state);

}  // namespace anvil::collectives_internal

// DeferredUnary: a unary gRPC call (callback API) answered later from any
// thread, possibly never if the client goes away first.
// Invariants: exactly one of Answer() and the client's cancellation finishes
// the call; the loser touches nothing but the shared flag, so an Answer()
// that races a cancellation (or arrives after the reactor was deleted) is a
// no-op. The response message is written only by the winner.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "runtime/store/grpc_status.h"

namespace anvil {

class DeferredUnary : public grpc::ServerUnaryReactor {
 public:
  // A copyable handle that outlives the reactor.
  class Handle {
   public:
    // Runs `fill` (writes the response) and finishes with `status` if the
    // call is still open. Returns false when it was already finished.
    bool Answer(const absl::Status& status, const std::function<void()>& fill = {}) const {
      if (shared_->finished.exchange(true)) return false;
      if (status.ok() && fill) fill();
      shared_->reactor->Finish(ToGrpcStatus(status));
      return true;
    }

   private:
    friend class DeferredUnary;
    struct Shared {
      std::atomic<bool> finished{false};
      DeferredUnary* reactor = nullptr;
    };
    std::shared_ptr<Shared> shared_;
  };

  // `on_cancel` runs (on a gRPC thread) when the client cancels or
  // disconnects before an answer; it should drop the pending work.
  explicit DeferredUnary(std::function<void()> on_cancel = {})
      : on_cancel_(std::move(on_cancel)) {
    handle_.shared_ = std::make_shared<Handle::Shared>();
    handle_.shared_->reactor = this;
  }

  const Handle& handle() const { return handle_; }
  void set_on_cancel(std::function<void()> f) { on_cancel_ = std::move(f); }

  void OnCancel() override {
    if (on_cancel_) on_cancel_();
    handle_.Answer(absl::CancelledError("call cancelled by the client"));
  }
  void OnDone() override { delete this; }

 private:
  Handle handle_;
  std::function<void()> on_cancel_;
};

}  // namespace anvil

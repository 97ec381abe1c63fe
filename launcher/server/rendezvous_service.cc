// RendezvousServiceImpl: Join/Heartbeat/Leave handlers and the Watch stream.
#include "launcher/server/rendezvous_service.h"

#include <deque>
#include <optional>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "launcher/server/deferred_call.h"

namespace anvil {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(status));
  return r;
}

// One watcher. Events arrive from RoundState (under its lock) via Push; the
// reactor writes them one at a time. Deletes itself in OnDone. Finish() is
// always the last thing a thread does with the reactor (OnDone may follow at
// once on another thread), so it is called after mu_ is released.
class WatchReactor final : public grpc::ServerWriteReactor<proto::RdzvEvent> {
 public:
  explicit WatchReactor(RoundState* rounds) : rounds_(rounds) {
    sink_id_ = rounds_->Subscribe([this](const proto::RdzvEvent& e) { Push(e); });
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> fin;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {  // client gone
        fin = MarkFinished(grpc::Status(grpc::StatusCode::CANCELLED, "watch stream broken"));
      } else {
        WriteNextLocked(fin);
      }
    }
    if (fin) Finish(*fin);
  }

  void OnCancel() override {
    Unsubscribe();
    std::optional<grpc::Status> fin;
    {
      absl::MutexLock lock(&mu_);
      fin = MarkFinished(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
    }
    if (fin) Finish(*fin);
  }

  void OnDone() override {
    Unsubscribe();
    delete this;
  }

 private:
  void Push(const proto::RdzvEvent& e) {
    std::optional<grpc::Status> fin;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || closing_) return;
      queue_.push_back(e);
      if (e.type() == proto::RdzvEvent::SERVER_SHUTDOWN) closing_ = true;
      if (!writing_) WriteNextLocked(fin);
    }
    if (fin) Finish(*fin);
  }

  void WriteNextLocked(std::optional<grpc::Status>& fin) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) return;
    if (queue_.empty()) {
      if (closing_) fin = MarkFinished(grpc::Status::OK);
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    // OnWriteDone runs on another thread and waits for mu_, so the reactor
    // stays alive (no Finish yet) until this returns.
    StartWrite(&current_);
  }

  std::optional<grpc::Status> MarkFinished(grpc::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return std::nullopt;
    finished_ = true;
    return status;
  }

  void Unsubscribe() {
    uint64_t id = sink_id_.exchange(0);
    if (id != 0) rounds_->Unsubscribe(id);
  }

  RoundState* const rounds_;
  std::atomic<uint64_t> sink_id_{0};
  absl::Mutex mu_;
  std::deque<proto::RdzvEvent> queue_ ABSL_GUARDED_BY(mu_);
  proto::RdzvEvent current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerUnaryReactor* RendezvousServiceImpl::Join(grpc::CallbackServerContext* ctx,
                                                      const proto::RdzvJoinRequest* req,
                                                      proto::RdzvJoinResponse* resp) {
  absl::StatusOr<RunState*> run = registry_->Authorize(*ctx);
  if (!run.ok()) return Reply(ctx, run.status());
  RoundState* rounds = &(*run)->rounds;
  uint64_t call_id = next_call_id_.fetch_add(1);
  auto* reactor = new DeferredUnary([rounds, call_id] { rounds->CancelJoin(call_id); });
  DeferredUnary::Handle handle = reactor->handle();
  rounds->Join(call_id, *req,
               [handle, resp](absl::StatusOr<proto::RdzvJoinResponse> result) {
                 if (!result.ok()) {
                   handle.Answer(result.status());
                   return;
                 }
                 handle.Answer(absl::OkStatus(), [&] { *resp = *std::move(result); });
               });
  return reactor;
}

grpc::ServerUnaryReactor* RendezvousServiceImpl::Heartbeat(
    grpc::CallbackServerContext* ctx, const proto::RdzvHeartbeatRequest* req,
    proto::RdzvHeartbeatResponse* resp) {
  absl::StatusOr<RunState*> run = registry_->Authorize(*ctx);
  if (!run.ok()) return Reply(ctx, run.status());
  absl::StatusOr<proto::RdzvHeartbeatResponse> r = (*run)->rounds.Heartbeat(*req);
  if (r.ok()) *resp = *std::move(r);
  return Reply(ctx, r.status());
}

grpc::ServerUnaryReactor* RendezvousServiceImpl::Leave(grpc::CallbackServerContext* ctx,
                                                       const proto::RdzvLeaveRequest* req,
                                                       proto::RdzvLeaveResponse*) {
  absl::StatusOr<RunState*> run = registry_->Authorize(*ctx);
  if (!run.ok()) return Reply(ctx, run.status());
  return Reply(ctx, (*run)->rounds.Leave(req->node_id()));
}

grpc::ServerWriteReactor<proto::RdzvEvent>* RendezvousServiceImpl::Watch(
    grpc::CallbackServerContext* ctx, const proto::RdzvWatchRequest*) {
  absl::StatusOr<RunState*> run = registry_->Authorize(*ctx);
  if (!run.ok()) {
    // A tiny reactor that only reports the error.
    class Refuse final : public grpc::ServerWriteReactor<proto::RdzvEvent> {
     public:
      explicit Refuse(const absl::Status& s) { Finish(ToGrpcStatus(s)); }
      void OnDone() override { delete this; }
    };
    return new Refuse(run.status());
  }
  return new WatchReactor(&(*run)->rounds);
}

}  // namespace anvil

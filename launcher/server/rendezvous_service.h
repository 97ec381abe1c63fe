// RendezvousServiceImpl: the gRPC rendezvous service (callback API) over
// RunRegistry / RoundState.
// Invariants: Join parks the call in RoundState (no thread held) and is
// answered when the round completes, times out, or dropped on cancel; each
// Watch is a write reactor fed by RoundState events with at most one write in
// flight and an unbounded queue behind it (events are small and rare).
#pragma once

#include <atomic>
#include <cstdint>

#include "launcher/server/run_registry.h"
#include "proto/rendezvous.grpc.pb.h"

namespace anvil {

class RendezvousServiceImpl final : public proto::RendezvousService::CallbackService {
 public:
  explicit RendezvousServiceImpl(RunRegistry* registry) : registry_(registry) {}

  grpc::ServerUnaryReactor* Join(grpc::CallbackServerContext* ctx,
                                 const proto::RdzvJoinRequest* req,
                                 proto::RdzvJoinResponse* resp) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const proto::RdzvHeartbeatRequest* req,
                                      proto::RdzvHeartbeatResponse* resp) override;
  grpc::ServerUnaryReactor* Leave(grpc::CallbackServerContext* ctx,
                                  const proto::RdzvLeaveRequest* req,
                                  proto::RdzvLeaveResponse* resp) override;
  grpc::ServerWriteReactor<proto::RdzvEvent>* Watch(grpc::CallbackServerContext* ctx,
                                                    const proto::RdzvWatchRequest* req) override;

 private:
  RunRegistry* const registry_;
  std::atomic<uint64_t> next_call_id_{1};
};

}  // namespace anvil

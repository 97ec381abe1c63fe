// StoreServiceImpl: the gRPC store service (callback API) over RunRegistry.
// Invariants: handlers never block; Get/Wait/MultiGet with a timeout park a
// waiter in the run's KvTable and are answered by whichever write completes
// them, by its deadline, or dropped when the client cancels.
#pragma once

#include "launcher/server/run_registry.h"
#include "proto/store.grpc.pb.h"

namespace anvil {

class StoreServiceImpl final : public proto::StoreService::CallbackService {
 public:
  explicit StoreServiceImpl(RunRegistry* registry) : registry_(registry) {}

  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const proto::StoreSetRequest* req,
                                proto::StoreSetResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const proto::StoreGetRequest* req,
                                proto::StoreGetResponse* resp) override;
  grpc::ServerUnaryReactor* Add(grpc::CallbackServerContext* ctx,
                                const proto::StoreAddRequest* req,
                                proto::StoreAddResponse* resp) override;
  grpc::ServerUnaryReactor* CompareSet(grpc::CallbackServerContext* ctx,
                                       const proto::StoreCompareSetRequest* req,
                                       proto::StoreCompareSetResponse* resp) override;
  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* ctx,
                                 const proto::StoreWaitRequest* req,
                                 proto::StoreWaitResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const proto::StoreDeleteRequest* req,
                                   proto::StoreDeleteResponse* resp) override;
  grpc::ServerUnaryReactor* MultiGet(grpc::CallbackServerContext* ctx,
                                     const proto::StoreMultiGetRequest* req,
                                     proto::StoreMultiGetResponse* resp) override;
  grpc::ServerUnaryReactor* MultiSet(grpc::CallbackServerContext* ctx,
                                     const proto::StoreMultiSetRequest* req,
                                     proto::StoreMultiSetResponse* resp) override;

 private:
  RunRegistry* const registry_;
};

}  // namespace anvil

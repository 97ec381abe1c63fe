// StoreServiceImpl: each handler authorises, then acts on the run's KvTable.
#include "launcher/server/store_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "launcher/server/deferred_call.h"

namespace anvil {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(status));
  return r;
}

// Parks a waiter for `keys`; `fill` writes the values into the response.
grpc::ServerUnaryReactor* WaitForKeys(
    KvTable& kv, std::vector<std::string> keys, int64_t timeout_ms,
    std::function<void(std::vector<std::string>&)> fill) {
  auto* reactor = new DeferredUnary();
  DeferredUnary::Handle handle = reactor->handle();
  KvTable::WaitId id = kv.WaitFor(
      std::move(keys), absl::Milliseconds(timeout_ms),
      [handle, fill = std::move(fill)](absl::StatusOr<std::vector<std::string>> values) {
        if (!values.ok()) {
          handle.Answer(values.status());
          return;
        }
        handle.Answer(absl::OkStatus(), [&] { fill(*values); });
      });
  if (id != 0) reactor->set_on_cancel([&kv, id] { kv.CancelWait(id); });
  return reactor;
}

}  // namespace

#define ANVIL_AUTHORIZE_OR_REPLY(run, ctx)                    \
  absl::StatusOr<RunState*> run##_or = registry_->Authorize(*ctx); \
  if (!run##_or.ok()) return Reply(ctx, run##_or.status());   \
  RunState* run = *run##_or

grpc::ServerUnaryReactor* StoreServiceImpl::Set(grpc::CallbackServerContext* ctx,
                                                const proto::StoreSetRequest* req,
                                                proto::StoreSetResponse*) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  run->kv.Set(req->key(), req->value());
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* StoreServiceImpl::Get(grpc::CallbackServerContext* ctx,
                                                const proto::StoreGetRequest* req,
                                                proto::StoreGetResponse* resp) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  return WaitForKeys(run->kv, {req->key()}, std::max<int64_t>(req->timeout_ms(), 0),
                     [resp](std::vector<std::string>& v) { resp->set_value(std::move(v[0])); });
}

grpc::ServerUnaryReactor* StoreServiceImpl::Add(grpc::CallbackServerContext* ctx,
                                                const proto::StoreAddRequest* req,
                                                proto::StoreAddResponse* resp) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  absl::StatusOr<int64_t> v = run->kv.Add(req->key(), req->delta());
  if (v.ok()) resp->set_value(*v);
  return Reply(ctx, v.status());
}

grpc::ServerUnaryReactor* StoreServiceImpl::CompareSet(grpc::CallbackServerContext* ctx,
                                                       const proto::StoreCompareSetRequest* req,
                                                       proto::StoreCompareSetResponse* resp) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  resp->set_value(run->kv.CompareSet(req->key(), req->expected(), req->desired()));
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* StoreServiceImpl::Wait(grpc::CallbackServerContext* ctx,
                                                 const proto::StoreWaitRequest* req,
                                                 proto::StoreWaitResponse*) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  return WaitForKeys(run->kv, std::move(keys), std::max<int64_t>(req->timeout_ms(), 0),
                     [](std::vector<std::string>&) {});
}

grpc::ServerUnaryReactor* StoreServiceImpl::Delete(grpc::CallbackServerContext* ctx,
                                                   const proto::StoreDeleteRequest* req,
                                                   proto::StoreDeleteResponse* resp) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  resp->set_existed(run->kv.Delete(req->key()));
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* StoreServiceImpl::MultiGet(grpc::CallbackServerContext* ctx,
                                                     const proto::StoreMultiGetRequest* req,
                                                     proto::StoreMultiGetResponse* resp) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  return WaitForKeys(run->kv, std::move(keys), std::max<int64_t>(req->timeout_ms(), 0),
                     [resp](std::vector<std::string>& values) {
                       for (std::string& v : values) resp->add_values(std::move(v));
                     });
}

grpc::ServerUnaryReactor* StoreServiceImpl::MultiSet(grpc::CallbackServerContext* ctx,
                                                     const proto::StoreMultiSetRequest* req,
                                                     proto::StoreMultiSetResponse*) {
  ANVIL_AUTHORIZE_OR_REPLY(run, ctx);
  if (req->keys_size() != req->values_size()) {
    return Reply(ctx, absl::InvalidArgumentError(absl::StrCat(
                          "MultiSet with ", req->keys_size(), " keys but ", req->values_size(),
                          " values")));
  }
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  std::vector<std::string> values(req->values().begin(), req->values().end());
  run->kv.MultiSet(keys, values);
  return Reply(ctx, absl::OkStatus());
}

#undef ANVIL_AUTHORIZE_OR_REPLY

}  // namespace anvil

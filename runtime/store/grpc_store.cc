// GrpcStore: each Store call is one unary RPC on a shared channel. Blocking
// calls send their timeout to the server (which answers with the missing
// keys named) and give the RPC deadline a few seconds of slack beyond it.
#include "runtime/store/grpc_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/store.grpc.pb.h"

namespace anvil {
namespace {

constexpr absl::Duration kBlockingSlack = absl::Seconds(2);

int64_t TimeoutMs(absl::Duration timeout) {
  if (timeout < absl::ZeroDuration()) return 0;
  // Keep far from overflow when the server adds it to "now".
  return std::min<int64_t>(absl::ToInt64Milliseconds(timeout), int64_t{1} << 50);
}

}  // namespace

struct GrpcStore::Impl {
  ServiceClient<proto::StoreService> client;

  template <typename Req, typename Resp, typename Method>
  absl::Status Call(Method method, const Req& req, Resp* resp, absl::Duration timeout) {
    return client.Call(method, req, resp, timeout);
  }
};

absl::StatusOr<std::unique_ptr<GrpcStore>> GrpcStore::Create(const GrpcStoreOptions& options) {
  if (options.run_id.empty()) return absl::InvalidArgumentError("GrpcStore needs a run_id");
  absl::StatusOr<ServiceClient<proto::StoreService>> client =
      ServiceClient<proto::StoreService>::Open(
          ChannelOptions{options.address, options.run_id, options.token, options.tls}, "the store");
  if (!client.ok()) return client.status();
  auto impl = std::make_unique<Impl>(Impl{*std::move(client)});
  if (options.connect_timeout > absl::ZeroDuration() &&
      !impl->client.channel()->WaitForConnected(
          absl::ToChronoTime(absl::Now() + options.connect_timeout))) {
    return absl::UnavailableError(absl::StrCat("cannot reach the store at ",
                                               impl->client.options().address, " within ",
                                               absl::FormatDuration(options.connect_timeout)));
  }
  return std::unique_ptr<GrpcStore>(new GrpcStore(options, std::move(impl)));
}

GrpcStore::GrpcStore(GrpcStoreOptions options, std::unique_ptr<Impl> impl)
    : options_(std::move(options)), impl_(std::move(impl)) {}

GrpcStore::~GrpcStore() = default;

absl::Status GrpcStore::Set(std::string_view key, std::string_view value) {
  proto::StoreSetRequest req;
  req.set_key(std::string(key));
  req.set_value(std::string(value));
  proto::StoreSetResponse resp;
  return impl_->Call(&proto::StoreService::Stub::Set, req, &resp, options_.rpc_timeout);
}

absl::StatusOr<std::string> GrpcStore::Get(std::string_view key, absl::Duration timeout) {
  proto::StoreGetRequest req;
  req.set_key(std::string(key));
  req.set_timeout_ms(TimeoutMs(timeout));
  proto::StoreGetResponse resp;
  absl::Status s =
      impl_->Call(&proto::StoreService::Stub::Get, req, &resp, timeout + kBlockingSlack);
  if (!s.ok()) return s;
  return std::move(*resp.mutable_value());
}

absl::StatusOr<int64_t> GrpcStore::Add(std::string_view key, int64_t delta) {
  proto::StoreAddRequest req;
  req.set_key(std::string(key));
  req.set_delta(delta);
  proto::StoreAddResponse resp;
  absl::Status s = impl_->Call(&proto::StoreService::Stub::Add, req, &resp, options_.rpc_timeout);
  if (!s.ok()) return s;
  return resp.value();
}

absl::StatusOr<std::string> GrpcStore::CompareSet(std::string_view key, std::string_view expected,
                                                  std::string_view desired) {
  proto::StoreCompareSetRequest req;
  req.set_key(std::string(key));
  req.set_expected(std::string(expected));
  req.set_desired(std::string(desired));
  proto::StoreCompareSetResponse resp;
  absl::Status s =
      impl_->Call(&proto::StoreService::Stub::CompareSet, req, &resp, options_.rpc_timeout);
  if (!s.ok()) return s;
  return std::move(*resp.mutable_value());
}

absl::Status GrpcStore::Wait(absl::Span<const std::string> keys, absl::Duration timeout) {
  proto::StoreWaitRequest req;
  for (const std::string& k : keys) req.add_keys(k);
  req.set_timeout_ms(TimeoutMs(timeout));
  proto::StoreWaitResponse resp;
  return impl_->Call(&proto::StoreService::Stub::Wait, req, &resp, timeout + kBlockingSlack);
}

absl::StatusOr<bool> GrpcStore::Delete(std::string_view key) {
  proto::StoreDeleteRequest req;
  req.set_key(std::string(key));
  proto::StoreDeleteResponse resp;
  absl::Status s =
      impl_->Call(&proto::StoreService::Stub::Delete, req, &resp, options_.rpc_timeout);
  if (!s.ok()) return s;
  return resp.existed();
}

absl::StatusOr<std::vector<std::string>> GrpcStore::MultiGet(absl::Span<const std::string> keys,
                                                             absl::Duration timeout) {
  proto::StoreMultiGetRequest req;
  for (const std::string& k : keys) req.add_keys(k);
  req.set_timeout_ms(TimeoutMs(timeout));
  proto::StoreMultiGetResponse resp;
  absl::Status s =
      impl_->Call(&proto::StoreService::Stub::MultiGet, req, &resp, timeout + kBlockingSlack);
  if (!s.ok()) return s;
  return std::vector<std::string>(std::make_move_iterator(resp.mutable_values()->begin()),
                                  std::make_move_iterator(resp.mutable_values()->end()));
}

absl::Status GrpcStore::MultiSet(absl::Span<const std::string> keys,
                                 absl::Span<const std::string> values) {
  if (keys.size() != values.size()) {
    return absl::InvalidArgumentError(absl::StrCat("MultiSet with ", keys.size(), " keys but ",
                                                   values.size(), " values"));
  }
  proto::StoreMultiSetRequest req;
  for (const std::string& k : keys) req.add_keys(k);
  for (const std::string& v : values) req.add_values(v);
  proto::StoreMultiSetResponse resp;
  return impl_->Call(&proto::StoreService::Stub::MultiSet, req, &resp, options_.rpc_timeout);
}

}  // namespace anvil

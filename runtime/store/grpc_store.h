// GrpcStore: the Store contract over gRPC, a client of the store service that
// the rendezvous server (launcher/server) hosts.
// Invariants: keys live on the server in a namespace per run id, so two jobs
// sharing one server never see each other's keys; every call carries the
// run id and token (PERMISSION_DENIED when either is wrong). Blocking calls
// (Get, Wait, MultiGet) are answered by the server when the keys appear or
// with DEADLINE_EXCEEDED naming the missing keys after `timeout`; they hold no
// server thread while waiting. Thread-safe: one GrpcStore may be shared by
// many threads (one channel, one HTTP/2 connection).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/store/grpc_channel.h"
#include "runtime/store/store.h"

namespace anvil {

struct GrpcStoreOptions {
  std::string address;  // "host:port" of the server (default port 29400).
  std::string run_id;   // the key namespace, normally the rendezvous id.
  std::string token;    // shared secret; empty when the server has none.
  ClientTlsOptions tls;
  // Deadline of the non-blocking calls (Set, Add, CompareSet, Delete,
  // MultiSet). Blocking calls use their own `timeout` plus this slack.
  absl::Duration rpc_timeout = absl::Seconds(30);
  // Create() waits this long for the server to answer before failing with
  // UNAVAILABLE ("cannot reach the store at host:port ..."). Zero: don't
  // check at creation; the first call reports it instead.
  absl::Duration connect_timeout = absl::Seconds(30);
};

class GrpcStore : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcStore>> Create(const GrpcStoreOptions& options);
  ~GrpcStore() override;

  absl::Status Set(std::string_view key, std::string_view value) override;
  absl::StatusOr<std::string> Get(std::string_view key, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(std::string_view key, int64_t delta) override;
  absl::StatusOr<std::string> CompareSet(std::string_view key, std::string_view expected,
                                         std::string_view desired) override;
  absl::Status Wait(absl::Span<const std::string> keys, absl::Duration timeout) override;
  absl::StatusOr<bool> Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> MultiGet(absl::Span<const std::string> keys,
                                                    absl::Duration timeout) override;
  absl::Status MultiSet(absl::Span<const std::string> keys,
                        absl::Span<const std::string> values) override;

  const GrpcStoreOptions& options() const { return options_; }

 private:
  struct Impl;
  GrpcStore(GrpcStoreOptions options, std::unique_ptr<Impl> impl);

  GrpcStoreOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil

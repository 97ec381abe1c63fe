// absl::Status to grpc::Status for the servers (clients read a grpc::Status
// through ContextualizeRpcError, grpc_channel.h).
// Invariant: the numeric codes are identical in both libraries, so a code
// crosses the RPC boundary unchanged; only the message is carried along.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace anvil {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace anvil

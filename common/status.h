#pragma once
// Errors are absl::Status values inside modules and grpc::Status at the gRPC boundary; the codes
// share their numbering, so the conversion keeps code and message unchanged.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace apim {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace apim

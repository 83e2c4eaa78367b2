#pragma once
// How apimctl calls the Management service: where it listens, what every call carries (the admin
// token and a deadline), reading a whole list page by page, and how a failed call is reported.

#include <google/protobuf/message.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/resource_kinds.h"
#include "common/tls/client_tls.h"

namespace apim::cli {

struct Connection {
  std::string server;
  std::string token;                     // sent as "authorization: Bearer <token>"
  std::chrono::milliseconds timeout{0};  // deadline of each call
  tls::ClientTls tls;                    // --tls, --ca-file, --cert-file, --key-file
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // made from `tls`
};

// Sets the token and the deadline on a context. A ClientContext serves one call, so each call
// gets a fresh one.
void PrepareContext(grpc::ClientContext& context, const Connection& connection);

// Appends every resource of `kind` to `items`, asking for `page_size` per List call until the
// last page.
grpc::Status ListAll(const ResourceKind& kind, ManagementStub& stub, const Connection& connection,
                     uint32_t page_size,
                     std::vector<std::unique_ptr<google::protobuf::Message>>& items);

// Prints a failed call as "apimctl: CODE_NAME: message", or "apimctl: CODE_NAME: doing: message"
// when `doing` says which step failed, and returns the exit code: the gRPC status code.
int ReportFailedCall(const grpc::Status& status, std::ostream& err, std::string_view doing = {});

}  // namespace apim::cli

#include "cli/connection.h"

#include "absl/status/status.h"
#include "cli/output.h"
#include "common/status.h"

namespace apim::cli {

void PrepareContext(grpc::ClientContext& context, const Connection& connection) {
  context.AddMetadata("authorization", "Bearer " + connection.token);
  context.set_deadline(std::chrono::system_clock::now() + connection.timeout);
}

grpc::Status ListAll(const ResourceKind& kind, ManagementStub& stub, const Connection& connection,
                     uint32_t page_size,
                     std::vector<std::unique_ptr<google::protobuf::Message>>& items) {
  v1::ListRequest request;
  request.set_page_size(page_size);
  while (true) {
    grpc::ClientContext context;
    PrepareContext(context, connection);
    std::string next_page_token;
    grpc::Status status = kind.calls.list(stub, context, request, items, next_page_token);
    if (!status.ok() || next_page_token.empty()) return status;
    request.set_page_token(next_page_token);
  }
}

int ReportFailedCall(const grpc::Status& status, std::ostream& err, std::string_view doing) {
  const absl::Status error = FromGrpcStatus(status);
  err << "apimctl: " << absl::StatusCodeToString(error.code());
  if (!doing.empty()) err << ": " << doing;
  if (!error.message().empty())
    err << ": " << EscapeControlCharacters(std::string(error.message()));
  err << '\n';
  return static_cast<int>(status.error_code());
}

}  // namespace apim::cli

#pragma once
// TLS on the control plane's gRPC port. The certificate, key and (for mTLS) client CA files are
// read and checked at start, and again on Reload (SIGHUP). What was checked is staged in a private
// directory that gRPC watches: new handshakes use it within a second, connections already open
// (every joined worker's) keep theirs. A reload that fails keeps what was staged before.

#include <grpcpp/security/server_credentials.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace apim::controlplane {

struct ServerTlsFiles {
  std::string cert_file;       // --tls-cert-file: the server's certificate chain.
  std::string key_file;        // --tls-key-file
  std::string client_ca_file;  // --client-ca-file: clients must show a certificate it signed.
};

class ServerTls {
 public:
  static absl::StatusOr<std::unique_ptr<ServerTls>> Start(ServerTlsFiles files);
  ~ServerTls();
  ServerTls(const ServerTls&) = delete;
  ServerTls& operator=(const ServerTls&) = delete;

  std::shared_ptr<grpc::ServerCredentials> credentials() const { return credentials_; }
  // Reads the files again and stages them; on error the previous ones stay.
  absl::Status Reload();

 private:
  explicit ServerTls(ServerTlsFiles files, std::filesystem::path staging)
      : files_(std::move(files)), staging_(std::move(staging)) {}

  ServerTlsFiles files_;
  std::filesystem::path staging_;  // Holds `current`, a link to the latest generation.
  int generation_ = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
};

}  // namespace apim::controlplane

#pragma once
// How a worker or apimctl dials the control plane: TLS that verifies the server (and may show a
// client certificate), or plaintext, which is allowed on loopback only unless asked for.

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace apim::tls {

struct ClientTls {
  bool tls = false;       // --tls; implied by a CA file or a client certificate.
  std::string ca_file;    // --ca-file (APIM_CA_FILE); empty: the system's CA bundle.
  std::string cert_file;  // --cert-file and --key-file: a client certificate, for mTLS.
  std::string key_file;
  bool allow_insecure = false;  // --allow-insecure: plaintext to a non-loopback address.

  bool enabled() const { return tls || !ca_file.empty() || !cert_file.empty(); }
};

// Credentials to dial `target` with. Errors (they name the flag): unreadable or mismatched
// files, and plaintext to an address that is not loopback without allow_insecure. Plaintext
// off loopback that was allowed is logged as a warning.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const std::string& target, const ClientTls& options);

}  // namespace apim::tls

#include "common/tls/client_tls.h"

#include <grpcpp/security/credentials.h>
#include <spdlog/spdlog.h>

#include "common/str_cat.h"
#include "common/tls/loopback.h"
#include "common/tls/pem.h"

namespace apim::tls {

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const std::string& target, const ClientTls& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("--cert-file and --key-file go together");
  }
  if (!options.enabled()) {
    if (!IsLoopback(target)) {
      if (!options.allow_insecure) {
        return absl::InvalidArgumentError(StrCat(
            "refusing plaintext to ", target,
            ", which is not a loopback address: tokens would cross the network readable; give "
            "--tls (with --ca-file if the control plane's certificate is not from a CA this "
            "machine trusts), or --allow-insecure"));
      }
      spdlog::warn("plaintext gRPC to {} (--allow-insecure): tokens cross the network readable",
                   target);
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  const bool system_store = options.ca_file.empty();
  absl::StatusOr<std::string> roots =
      ReadCertificates(system_store ? "the system CA bundle" : "--ca-file",
                       system_store ? SystemCaFile() : options.ca_file);
  if (!roots.ok()) return roots.status();
  ssl.pem_root_certs = *std::move(roots);
  if (!options.cert_file.empty()) {
    absl::StatusOr<std::string> chain = ReadCertificates("--cert-file", options.cert_file);
    if (!chain.ok()) return chain.status();
    absl::StatusOr<std::string> key = ReadPrivateKey("--key-file", options.key_file);
    if (!key.ok()) return key.status();
    if (absl::Status matches = CheckKeyMatchesCertificate(*chain, *key); !matches.ok()) {
      return absl::InvalidArgumentError(
          StrCat("--key-file ", options.key_file, ": ", matches.message(), " in --cert-file"));
    }
    ssl.pem_cert_chain = *std::move(chain);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace apim::tls

#pragma once
// PEM files for TLS, read and checked when they are given: gRPC would report a bad file only at
// the first handshake, and without naming it.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace apim::tls {

// PEM text of one or more certificates; the error names `field`.
absl::Status CheckCertificates(std::string_view field, const std::string& pem);
// PEM text of an unencrypted private key; the error names `field`.
absl::Status CheckPrivateKey(std::string_view field, const std::string& pem);

// A file of one or more certificates (a chain, or a CA bundle). Errors name `flag` and the path.
absl::StatusOr<std::string> ReadCertificates(std::string_view flag, const std::string& path);
// A file holding a private key.
absl::StatusOr<std::string> ReadPrivateKey(std::string_view flag, const std::string& path);
// The key belongs to the first certificate of the chain.
absl::Status CheckKeyMatchesCertificate(const std::string& chain_pem, const std::string& key_pem);

// OpenSSL's last error as text (the queue is cleared), or `if_none` when there is none.
std::string OpenSslErrorText(std::string_view if_none = "");

// The system's CA bundle: $SSL_CERT_FILE if set, else Debian's /etc/ssl/certs/ca-certificates.crt.
std::string SystemCaFile();

}  // namespace apim::tls

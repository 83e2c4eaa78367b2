#pragma once
// PEM files for TLS, read and checked when they are given: gRPC would report a bad file only at
// the first handshake, and without naming it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// What the first certificate of a PEM chain (the leaf) says about itself.
struct LeafCertificate {
  std::string subject;                         // RFC 2253, one line: "CN=api.example.com,O=Example"
  std::string issuer;                          // the same form
  std::vector<std::string> subject_alt_names;  // "DNS:api.example.com", "IP:10.0.0.1"
  int64_t not_before = 0;                      // Unix seconds
  int64_t not_after = 0;
  std::string sha256_fingerprint;  // of the DER, uppercase hex pairs joined by ':'
};
// The leaf of `chain_pem`; INVALID_ARGUMENT naming `field` if there is none.
absl::StatusOr<LeafCertificate> ReadLeafCertificate(std::string_view field,
                                                    const std::string& chain_pem);
// Whether a client verifying `hostname` ("api.example.com" or "*.example.com") against the leaf's
// DNS names would accept it: an exact name, or a wildcard name one label up. Case-insensitive.
bool CoversHostname(const LeafCertificate& leaf, std::string_view hostname);

// OpenSSL's last error as text (the queue is cleared), or `if_none` when there is none.
std::string OpenSslErrorText(std::string_view if_none = "");

// The system's CA bundle: $SSL_CERT_FILE if set, else Debian's /etc/ssl/certs/ca-certificates.crt.
std::string SystemCaFile();

}  // namespace apim::tls

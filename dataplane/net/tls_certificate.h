#pragma once
// The certificate a TLS context shows its peer, from PEM text: the server certificates the TLS
// listener serves and the client certificates of mTLS to backends are loaded alike.

#include <openssl/ssl.h>

#include <string>

#include "absl/status/status.h"

namespace apim::dataplane {

// Makes `context` show `chain_pem` (the leaf first, then the intermediates sent with it) and
// sign with `key_pem`. An error carries OpenSSL's reason (a PEM that does not parse, a key that
// does not match, a key the security level refuses).
absl::Status UseCertificateChainAndKey(SSL_CTX* context, const std::string& chain_pem,
                                       const std::string& key_pem);

}  // namespace apim::dataplane

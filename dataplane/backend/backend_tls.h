#pragma once
// TLS to backends: one OpenSSL context per distinct set of settings (shared by every API and
// thread that uses those settings), which verifies the backend by default (chain against the CA
// bundle, host name, SNI; TLS 1.2 at least) and keeps the latest session of each backend so a new
// connection resumes instead of making a full handshake.

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

struct BackendTlsSettings {
  std::string ca_pem;           // Trusted CAs; empty: the worker's default bundle.
  std::string client_cert_pem;  // With client_key_pem: a client certificate (mTLS).
  std::string client_key_pem;
  std::string server_name;  // Verified and sent as SNI instead of the URL's host.
  bool skip_verification = false;

  bool operator==(const BackendTlsSettings&) const = default;
};

// The CA bundle used when an API names none: the worker's --backend-ca-file, else $SSL_CERT_FILE,
// else the system's. Set once at start, before the first snapshot is compiled.
void SetDefaultBackendCaFile(std::string path);

class BackendTlsContext {
 public:
  // The context for `settings`: an existing one if another API uses the same settings.
  static absl::StatusOr<std::shared_ptr<BackendTlsContext>> For(const BackendTlsSettings& settings);
  ~BackendTlsContext();
  BackendTlsContext(const BackendTlsContext&) = delete;
  BackendTlsContext& operator=(const BackendTlsContext&) = delete;

  // A client SSL for `host` (an address or name from the URL) on `fd`, resuming the backend's
  // last session if there is one.
  SslPtr NewConnection(int fd, const std::string& host, const std::string& port);
  bool skips_verification() const { return settings_.skip_verification; }

 private:
  explicit BackendTlsContext(BackendTlsSettings settings) : settings_(std::move(settings)) {}
  static int OnNewSession(SSL* ssl, SSL_SESSION* session);

  BackendTlsSettings settings_;
  SSL_CTX* context_ = nullptr;
  std::mutex mu_;
  std::unordered_map<std::string, SSL_SESSION*> sessions_;  // host:port -> latest session
};

// Why a handshake failed, in words for a problem detail and the access log: the verification
// result when it was the certificate (unknown CA, name mismatch, expired), else OpenSSL's error.
std::string HandshakeFailure(SSL* ssl);

}  // namespace apim::dataplane

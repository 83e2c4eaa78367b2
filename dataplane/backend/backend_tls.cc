#include "dataplane/backend/backend_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <vector>

#include "common/str_cat.h"
#include "common/tls/pem.h"
#include "dataplane/net/tls_certificate.h"

namespace apim::dataplane {
namespace {

std::string& DefaultCaFile() {
  static std::string path;
  return path;
}

// Contexts alive now, by settings: APIs with the same settings share one (and its sessions).
std::mutex registry_mu;
std::vector<std::weak_ptr<BackendTlsContext>>& Registry() {
  static std::vector<std::weak_ptr<BackendTlsContext>> contexts;
  return contexts;
}

// Where an SSL keeps the key ("host:port") its sessions are filed under; freed with the SSL.
int SessionKeyIndex() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* key, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<std::string*>(key);
      });
  return index;
}

absl::Status AddCertificates(SSL_CTX* context, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509_STORE* store = SSL_CTX_get_cert_store(context);
  int added = 0;
  while (X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    added += X509_STORE_add_cert(store, certificate) == 1;
    X509_free(certificate);
  }
  BIO_free(bio);
  ERR_clear_error();
  if (added == 0) return absl::InvalidArgumentError("the backend CA certificate does not parse");
  return absl::OkStatus();
}

}  // namespace

void SetDefaultBackendCaFile(std::string path) { DefaultCaFile() = std::move(path); }

absl::StatusOr<std::shared_ptr<BackendTlsContext>> BackendTlsContext::For(
    const BackendTlsSettings& settings) {
  std::lock_guard lock(registry_mu);
  std::vector<std::weak_ptr<BackendTlsContext>>& registry = Registry();
  std::erase_if(registry, [](const auto& weak) { return weak.expired(); });
  for (const auto& weak : registry) {
    if (auto context = weak.lock(); context && context->settings_ == settings) return context;
  }
  std::shared_ptr<BackendTlsContext> made(new BackendTlsContext(settings));
  made->context_ = SSL_CTX_new(TLS_client_method());
  if (made->context_ == nullptr) return absl::InternalError("cannot make a TLS context");
  SSL_CTX* context = made->context_;
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  // An idle stream keeps no read or write buffer: OpenSSL frees them between records.
  SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A backend that closes without close_notify ends a close-delimited body; HTTP's own framing
  // tells a cut response from a whole one.
  SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_verify(context, settings.skip_verification ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                     nullptr);
  if (!settings.ca_pem.empty()) {
    if (absl::Status added = AddCertificates(context, settings.ca_pem); !added.ok()) return added;
  } else if (!DefaultCaFile().empty()) {
    if (SSL_CTX_load_verify_locations(context, DefaultCaFile().c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(
          StrCat("--backend-ca-file ", DefaultCaFile(), ": ", tls::OpenSslErrorText()));
    }
  } else {
    SSL_CTX_set_default_verify_paths(context);  // $SSL_CERT_FILE, else the system's bundle.
  }
  if (!settings.client_cert_pem.empty()) {
    if (absl::Status used =
            UseCertificateChainAndKey(context, settings.client_cert_pem, settings.client_key_pem);
        !used.ok()) {
      return absl::InvalidArgumentError(StrCat(
          "the backend client certificate or key cannot be used: ", std::string(used.message())));
    }
  }
  // Sessions are kept here, one per backend, not in OpenSSL's cache (clients have none).
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(context, &BackendTlsContext::OnNewSession);
  SSL_CTX_set_app_data(context, made.get());
  registry.push_back(made);
  return made;
}

BackendTlsContext::~BackendTlsContext() {
  for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
  SSL_CTX_free(context_);
}

int BackendTlsContext::OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<BackendTlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, SessionKeyIndex()));
  if (self == nullptr || key == nullptr) return 0;
  std::lock_guard lock(self->mu_);
  SSL_SESSION*& kept = self->sessions_[*key];
  if (kept != nullptr) SSL_SESSION_free(kept);
  kept = session;
  return 1;  // Ours now.
}

SslPtr BackendTlsContext::NewConnection(int fd, const std::string& host, const std::string& port) {
  SslPtr ssl(SSL_new(context_));
  if (!ssl) return ssl;
  SSL_set_fd(ssl.get(), fd);
  SSL_set_connect_state(ssl.get());
  const std::string& name = settings_.server_name.empty() ? host : settings_.server_name;
  in6_addr unused{};
  const bool is_address = inet_pton(AF_INET, name.c_str(), &unused) == 1 ||
                          inet_pton(AF_INET6, name.c_str(), &unused) == 1;
  if (!is_address) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  if (!settings_.skip_verification) {
    X509_VERIFY_PARAM* verify = SSL_get0_param(ssl.get());
    if (is_address) {
      X509_VERIFY_PARAM_set1_ip_asc(verify, name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(verify, name.c_str(), 0);
    }
  }
  auto* key = new std::string(StrCat(host, ":", port));
  SSL_set_ex_data(ssl.get(), SessionKeyIndex(), key);
  std::lock_guard lock(mu_);
  if (auto found = sessions_.find(*key); found != sessions_.end()) {
    SSL_set_session(ssl.get(), found->second);
  }
  return ssl;
}

std::string HandshakeFailure(SSL* ssl) {
  const long verified = SSL_get_verify_result(ssl);
  const std::string error = tls::OpenSslErrorText();
  if (verified != X509_V_OK) {
    std::string_view kind;
    switch (verified) {
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        kind = "unknown CA";
        break;
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        kind = "name mismatch";
        break;
      case X509_V_ERR_CERT_HAS_EXPIRED:
        kind = "expired";
        break;
      case X509_V_ERR_CERT_NOT_YET_VALID:
        kind = "not yet valid";
        break;
      default:
        kind = "certificate refused";
    }
    return StrCat(kind, ": ", X509_verify_cert_error_string(verified));
  }
  return error.empty() ? "the backend closed the connection during the handshake" : error;
}

}  // namespace apim::dataplane

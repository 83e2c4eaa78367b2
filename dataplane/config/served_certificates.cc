#include "dataplane/config/served_certificates.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/str_cat.h"
#include "common/tls/pem.h"
#include "dataplane/net/tls_certificate.h"

namespace apim::dataplane {
namespace {

// TLS 1.2's ciphers as Mozilla's "intermediate" profile lists them (forward secrecy, AEAD only);
// TLS 1.3 keeps OpenSSL's defaults, which are all modern.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// ALPN: h2 preferred, then HTTP/1.1 (OpenSSL picks by the server's order); HTTP/1.1 alone when
// HTTP/2 is turned off. A client offering only other protocols is served without ALPN (and finds
// out from the first response), as nginx does.
constexpr unsigned char kHttp2AndHttp11[] = {2,   'h', '2', 8,   'h', 't',
                                             't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Where an SSL notes that it may offer h2 (any non-null value).
int OfferHttp2Index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int SelectProtocol(SSL* ssl, const unsigned char** out, unsigned char* out_length,
                   const unsigned char* offered, unsigned int offered_length, void* /*arg*/) {
  const bool http2 = SSL_get_ex_data(ssl, OfferHttp2Index()) != nullptr;
  const unsigned char* ours = http2 ? kHttp2AndHttp11 : kHttp11;
  const unsigned int ours_length = http2 ? sizeof kHttp2AndHttp11 : sizeof kHttp11;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, ours, ours_length, offered, offered_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Where an SSL keeps the certificates it was made from, so the SNI callback finds them alive.
int OwnerIndex() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* owner, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<std::shared_ptr<const ServedCertificates>*>(owner);
      });
  return index;
}

// The PEM text of a served certificate: given, or read from the files a standalone snapshot
// names.
absl::Status ReadPem(const v1::ServedCertificate& served, std::string& chain, std::string& key) {
  if (!served.certificate_chain_file().empty() || !served.private_key_file().empty()) {
    absl::StatusOr<std::string> read_chain =
        tls::ReadCertificates("certificate_chain_file", served.certificate_chain_file());
    if (!read_chain.ok()) return read_chain.status();
    absl::StatusOr<std::string> read_key =
        tls::ReadPrivateKey("private_key_file", served.private_key_file());
    if (!read_key.ok()) return read_key.status();
    chain = *std::move(read_chain);
    key = *std::move(read_key);
    return absl::OkStatus();
  }
  chain = served.certificate_chain();
  key = served.private_key();
  if (chain.empty() || key.empty()) {
    return absl::InvalidArgumentError("needs a certificate chain and a private key");
  }
  return absl::OkStatus();
}

// A server context serving `chain` (leaf first) with `key`.
absl::StatusOr<SSL_CTX*> MakeContext(const std::string& chain, const std::string& key) {
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  if (context == nullptr) return absl::InternalError("cannot make a TLS context");
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(context, kTls12Ciphers);
  // Idle connections (most open streams) keep no buffers; writes may be partial and retried
  // from a buffer that moved.
  SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Resumption by stateless tickets only: no per-session memory on the worker.
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(context, 1);
  SSL_CTX_set_alpn_select_cb(context, &SelectProtocol, nullptr);

  if (absl::Status used = UseCertificateChainAndKey(context, chain, key); !used.ok()) {
    SSL_CTX_free(context);
    return absl::InvalidArgumentError(
        StrCat("the certificate cannot be used: ", std::string(used.message())));
  }
  return context;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ServedCertificates>> ServedCertificates::Load(
    const google::protobuf::RepeatedPtrField<v1::ServedCertificate>& certificates) {
  if (certificates.empty()) return nullptr;
  std::shared_ptr<ServedCertificates> loaded(new ServedCertificates());
  bool default_chosen = false;
  for (const v1::ServedCertificate& served : certificates) {
    const auto refuse = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          StrCat("certificate \"", served.name(), "\" cannot be served: ", std::string(why)));
    };
    std::string chain, key;
    if (absl::Status read = ReadPem(served, chain, key); !read.ok()) return refuse(read.message());
    absl::StatusOr<tls::LeafCertificate> leaf = tls::ReadLeafCertificate("certificate", chain);
    if (!leaf.ok()) return refuse(leaf.status().message());
    absl::StatusOr<SSL_CTX*> context = MakeContext(chain, key);
    if (!context.ok()) return refuse(context.status().message());
    const size_t index = loaded->served_.size();
    Served& entry = loaded->served_.emplace_back();
    entry.name = served.name();
    entry.context = *context;
    entry.not_after = leaf->not_after;
    SSL_CTX_set_tlsext_servername_callback(entry.context, &ServedCertificates::OnServerName);
    for (const std::string& hostname : served.hostnames()) {
      const std::string name = Lowercase(hostname);
      entry.hostnames.push_back(name);
      auto& table = name.starts_with("*.") ? loaded->wildcard_ : loaded->exact_;
      const std::string key_name = name.starts_with("*.") ? name.substr(2) : name;
      if (!table.emplace(key_name, index).second) {
        return refuse(StrCat("hostname ", name, " is served by another certificate too"));
      }
    }
    if (served.is_default() && !default_chosen) {
      loaded->default_ = index;
      default_chosen = true;
    }
  }
  return std::shared_ptr<const ServedCertificates>(std::move(loaded));
}

ServedCertificates::~ServedCertificates() {
  for (Served& served : served_) SSL_CTX_free(served.context);
}

SslPtr ServedCertificates::NewConnection(int fd, bool offer_http2) const {
  SslPtr ssl(SSL_new(served_[default_].context));
  if (!ssl) return ssl;
  if (offer_http2) SSL_set_ex_data(ssl.get(), OfferHttp2Index(), ssl.get());
  SSL_set_fd(ssl.get(), fd);
  SSL_set_accept_state(ssl.get());
  SSL_set_ex_data(ssl.get(), OwnerIndex(),
                  new std::shared_ptr<const ServedCertificates>(shared_from_this()));
  return ssl;
}

const ServedCertificates::Served* ServedCertificates::Find(std::string_view server_name) const {
  const std::string name = Lowercase(server_name);
  if (auto found = exact_.find(name); found != exact_.end()) return &served_[found->second];
  // "*.example.com" covers one label: "api.example.com", not "example.com" nor "a.b.example.com".
  if (const size_t dot = name.find('.'); dot != std::string::npos && dot > 0) {
    if (auto found = wildcard_.find(name.substr(dot + 1)); found != wildcard_.end()) {
      return &served_[found->second];
    }
  }
  return nullptr;
}

int ServedCertificates::OnServerName(SSL* ssl, int* /*alert*/, void* /*arg*/) {
  const char* server_name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const auto* owner =
      static_cast<std::shared_ptr<const ServedCertificates>*>(SSL_get_ex_data(ssl, OwnerIndex()));
  if (server_name == nullptr || owner == nullptr) return SSL_TLSEXT_ERR_OK;  // The default.
  const Served* served = (*owner)->Find(server_name);
  if (served != nullptr && served->context != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, served->context);
  }
  return SSL_TLSEXT_ERR_OK;
}

std::map<std::string, int64_t> ServedCertificates::NotAfterByHostname() const {
  std::map<std::string, int64_t> out;
  for (const Served& served : served_) {
    for (const std::string& hostname : served.hostnames) out[hostname] = served.not_after;
    if (served.hostnames.empty()) out[""] = served.not_after;
  }
  return out;
}

std::string ClientHandshakeFailure(SSL* /*ssl*/) {
  return tls::OpenSslErrorText("the client closed the connection during the handshake");
}

}  // namespace apim::dataplane

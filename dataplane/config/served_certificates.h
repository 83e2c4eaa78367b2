#pragma once
// TLS for the worker's clients: the certificates a snapshot serves on the TLS listener, one
// OpenSSL context each, chosen by the client's SNI (an exact name, then "*.parent"), else the
// default. Loaded when the snapshot is compiled, so a certificate that cannot be used refuses the
// whole snapshot (a NACK, or a refused reload) and the ones served before stay. Connections keep
// the certificates they were accepted with: a rotation reaches new handshakes only.

#include <openssl/ssl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

class ServedCertificates : public std::enable_shared_from_this<ServedCertificates> {
 public:
  // Null when the snapshot serves no certificate. PEM text, or for standalone snapshot files the
  // PEM files named, read now. Errors name the certificate and what is wrong with it.
  static absl::StatusOr<std::shared_ptr<const ServedCertificates>> Load(
      const google::protobuf::RepeatedPtrField<v1::ServedCertificate>& certificates);
  ~ServedCertificates();
  ServedCertificates(const ServedCertificates&) = delete;
  ServedCertificates& operator=(const ServedCertificates&) = delete;

  // A server-side SSL on `fd` that picks its certificate from the client's SNI, and offers h2
  // by ALPN (before http/1.1) when `offer_http2`. It keeps these certificates alive for as long
  // as it lives.
  SslPtr NewConnection(int fd, bool offer_http2) const;

  // Unix not-after time of the certificate served for each hostname ("" for a default
  // certificate that is bound to no hostname), for the expiry metric.
  std::map<std::string, int64_t> NotAfterByHostname() const;

 private:
  struct Served {
    std::string name;
    std::vector<std::string> hostnames;
    SSL_CTX* context = nullptr;
    int64_t not_after = 0;
  };
  ServedCertificates() = default;
  static int OnServerName(SSL* ssl, int* alert, void* arg);
  const Served* Find(std::string_view server_name) const;

  std::vector<Served> served_;
  std::unordered_map<std::string, size_t> exact_;     // "api.example.com" -> served_ index
  std::unordered_map<std::string, size_t> wildcard_;  // "example.com" for "*.example.com"
  size_t default_ = 0;
};

// Why a client's handshake failed, for the debug log: OpenSSL's reason, or the socket's.
std::string ClientHandshakeFailure(SSL* ssl);

}  // namespace apim::dataplane

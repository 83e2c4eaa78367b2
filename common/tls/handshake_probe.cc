#include "common/tls/handshake_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/str_cat.h"
#include "common/tls/pem.h"

namespace apim::tls {
namespace {

struct ContextFree {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// A connected socket to host:port within `timeout`, or -1.
int Connect(const std::string& host, const std::string& port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  for (addrinfo* address = found; address != nullptr; address = address->ai_next) {
    const int fd = socket(address->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int error = connect(fd, address->ai_addr, address->ai_addrlen) == 0 ? 0 : errno;
    if (error == EINPROGRESS) {
      pollfd wait{fd, POLLOUT, 0};
      socklen_t size = sizeof error;
      error = poll(&wait, 1, static_cast<int>(timeout.count())) == 1 &&
                      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0
                  ? error
                  : ETIMEDOUT;
    }
    if (error == 0) {
      // The handshake below blocks, within the same timeout for each read and write.
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      timeval limit{static_cast<time_t>(timeout.count() / 1000),
                    static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
      return fd;
    }
    close(fd);
  }
  return -1;
}

std::string OpenSslError() {
  return OpenSslErrorText("the connection was closed during the handshake");
}

// Notes whether the server asked for a client certificate (its CertificateRequest message):
// gRPC's server refuses a missing or untrusted one by closing the connection, without an alert
// that would say so.
void NoteCertificateRequest(int write_p, int, int content_type, const void* message, size_t size,
                            SSL*, void* requested) {
  if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && size > 0 &&
      static_cast<const unsigned char*>(message)[0] == SSL3_MT_CERTIFICATE_REQUEST) {
    *static_cast<bool*>(requested) = true;
  }
}

// What a handshake the server ended means.
std::string ExplainRefusal(const std::string& error, bool asked_for_certificate,
                           bool showed_certificate) {
  if (asked_for_certificate && !showed_certificate) {
    return "the control plane requires a client certificate: give --cert-file and --key-file";
  }
  if (asked_for_certificate) {
    return StrCat("the control plane refused the client certificate (", error,
                  "): is it signed by the CA the control plane's --client-ca-file names?");
  }
  return StrCat("the TLS handshake failed: ", error);
}

}  // namespace

std::string DiagnoseHandshake(const std::string& target, const ClientTls& options,
                              std::chrono::milliseconds timeout) {
  if (!options.enabled()) return "";
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) return "";
  std::string host = target.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  const std::string port = target.substr(colon + 1);

  std::unique_ptr<SSL_CTX, ContextFree> context(SSL_CTX_new(TLS_client_method()));
  if (!context) return "";
  SSL_CTX_set_min_proto_version(context.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
  const std::string ca_file = options.ca_file.empty() ? SystemCaFile() : options.ca_file;
  if (SSL_CTX_load_verify_locations(context.get(), ca_file.c_str(), nullptr) != 1) {
    return StrCat("cannot load the CA certificates in ", ca_file, ": ", OpenSslError());
  }
  if (!options.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(context.get(), options.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(context.get(), options.key_file.c_str(), SSL_FILETYPE_PEM) !=
           1)) {
    return StrCat("cannot load the client certificate: ", OpenSslError());
  }
  // gRPC speaks HTTP/2 and its servers insist on ALPN h2.
  static constexpr unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(context.get(), kAlpn, sizeof kAlpn);

  const int fd = Connect(host, port, timeout);
  if (fd < 0) return "";
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(context.get()));
  SSL_set_fd(ssl.get(), fd);
  bool asked_for_certificate = false;
  SSL_set_msg_callback(ssl.get(), NoteCertificateRequest);
  SSL_set_msg_callback_arg(ssl.get(), &asked_for_certificate);
  X509_VERIFY_PARAM* verify = SSL_get0_param(ssl.get());
  if (X509_VERIFY_PARAM_set1_ip_asc(verify, host.c_str()) != 1) {
    ERR_clear_error();
    X509_VERIFY_PARAM_set1_host(verify, host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  }
  std::string reason;
  const bool showed_certificate = !options.cert_file.empty();
  if (SSL_connect(ssl.get()) == 1) {
    // With TLS 1.3 the server judges the client's certificate after the client has finished
    // its handshake: a refusal arrives with the first read.
    char byte;
    const int peeked = SSL_peek(ssl.get(), &byte, 1);
    if (peeked <= 0 && SSL_get_error(ssl.get(), peeked) == SSL_ERROR_SSL) {
      reason = ExplainRefusal(OpenSslError(), asked_for_certificate, showed_certificate);
    }
  } else if (const long verified = SSL_get_verify_result(ssl.get()); verified != X509_V_OK) {
    const std::string source = options.ca_file.empty() ? StrCat("the system CA bundle ", ca_file)
                                                       : StrCat("--ca-file ", ca_file);
    reason = StrCat("this machine does not trust the control plane's certificate: ",
                    X509_verify_cert_error_string(verified), " (checked against ", source, ")");
  } else {
    reason = ExplainRefusal(OpenSslError(), asked_for_certificate, showed_certificate);
  }
  SSL_shutdown(ssl.get());
  close(fd);
  return reason;
}

}  // namespace apim::tls

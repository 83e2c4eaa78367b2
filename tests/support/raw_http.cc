#include "tests/support/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <stdexcept>

namespace apim::testing {

TlsClientState::TlsClientState(int fd, const TlsClient& tls, const std::string& alpn_wire)
    : context(SSL_CTX_new(TLS_client_method())) {
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(context, tls.ca_file.c_str(), nullptr) != 1) {
    throw std::runtime_error("cannot load " + tls.ca_file.string() + ": " + OpenSslError());
  }
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  ssl = SSL_new(context);
  SSL_set_fd(ssl, fd);
  if (!tls.server_name.empty()) {
    SSL_set_tlsext_host_name(ssl, tls.server_name.c_str());
    if (tls.verify_name) SSL_set1_host(ssl, tls.server_name.c_str());
  }
  if (!alpn_wire.empty()) {
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(alpn_wire.data()),
                        static_cast<unsigned>(alpn_wire.size()));
  }
}

std::string TlsClientState::HandshakeFailure(int result) const {
  const int error = SSL_get_error(ssl, result);
  const long verified = SSL_get_verify_result(ssl);
  std::string why =
      verified != X509_V_OK ? X509_verify_cert_error_string(verified) : OpenSslError();
  if (why.empty()) {
    why = error == SSL_ERROR_SYSCALL ? "the connection closed (errno " + std::to_string(errno) + ")"
                                     : "SSL error " + std::to_string(error);
  }
  return why;
}

TlsClientState::~TlsClientState() {
  SSL_free(ssl);
  SSL_CTX_free(context);
}

std::string OpenSslError() {
  std::string text;
  while (unsigned long error = ERR_get_error()) {
    char line[256];
    ERR_error_string_n(error, line, sizeof line);
    text += (text.empty() ? "" : "; ") + std::string(line);
  }
  return text;
}

std::string AlpnWire(const std::string& list) {
  std::string wire;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(',', start), list.size());
    if (end > start) {
      wire += static_cast<char>(end - start);
      wire += list.substr(start, end - start);
    }
    start = end + 1;
  }
  return wire;
}

RawConnection::RawConnection(uint16_t port, const TlsClient& tls) : RawConnection(port) {
  // OpenSSL writes with write(): a server that has closed must fail the write, not kill the test.
  static const bool ignore_sigpipe = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)ignore_sigpipe;
  timeval receive_timeout{10, 0};  // A handshake that stalls fails instead of hanging the test.
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);
  tls_ = std::make_unique<TlsClientState>(fd_, tls, AlpnWire(tls.alpn));
  if (const int done = SSL_connect(tls_->ssl); done != 1) {
    throw std::runtime_error("TLS handshake with 127.0.0.1:" + std::to_string(port) +
                             " failed: " + tls_->HandshakeFailure(done));
  }
}

std::string RawConnection::peer_subject() const {
  if (!tls_) return "";
  X509* certificate = SSL_get1_peer_certificate(tls_->ssl);
  if (certificate == nullptr) return "";
  BIO* out = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(out, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out, &data);
  std::string subject(data, static_cast<size_t>(size));
  BIO_free(out);
  X509_free(certificate);
  return subject;
}

std::string RawConnection::alpn() const {
  if (!tls_) return "";
  const unsigned char* chosen = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(tls_->ssl, &chosen, &size);
  return std::string(reinterpret_cast<const char*>(chosen), size);
}

bool RawConnection::session_reused() const { return tls_ && SSL_session_reused(tls_->ssl) == 1; }

RawConnection::RawConnection(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  // A peer that stops reading makes Send fail after this long instead of blocking for ever.
  timeval send_timeout{10, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
}

RawConnection::~RawConnection() { Close(); }

uint16_t RawConnection::local_port() const {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) return 0;
  return ntohs(address.sin_port);
}

void RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = tls_ ? SSL_write(tls_->ssl, bytes.data(), static_cast<int>(bytes.size()))
                           : ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

bool RawConnection::ReadOnce(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  const bool buffered = tls_ && SSL_pending(tls_->ssl) > 0;
  pollfd p{fd_, POLLIN, 0};
  if (!buffered && ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buffer[16384];
  ssize_t n = 0;
  if (tls_) {
    n = SSL_read(tls_->ssl, buffer, sizeof buffer);
    // Readable, but only a TLS message of no application data (a session ticket): read on.
    if (n <= 0 && SSL_get_error(tls_->ssl, static_cast<int>(n)) == SSL_ERROR_WANT_READ) return true;
  } else {
    n = ::recv(fd_, buffer, sizeof buffer, 0);
  }
  if (n <= 0) {
    closed_ = true;
  } else {
    received_.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

std::optional<std::string> RawConnection::ReadUntil(std::string_view needle,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (received_.find(needle) == std::string::npos) {
    if (closed_ || !ReadOnce(deadline)) return std::nullopt;
  }
  return received_;
}

bool RawConnection::WaitForClose(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_) {
    if (!ReadOnce(deadline)) return false;
  }
  return true;
}

void RawConnection::Close(bool reset) {
  if (fd_ < 0) return;
  if (reset) {
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  } else if (tls_ && !closed_) {
    SSL_shutdown(tls_->ssl);
  }
  ::close(fd_);
  fd_ = -1;
}

std::string Dechunk(std::string_view body) {
  std::string out;
  while (!body.empty()) {
    size_t line_end = body.find("\r\n");
    if (line_end == std::string_view::npos) break;
    size_t size = std::stoul(std::string(body.substr(0, line_end)), nullptr, 16);
    if (size == 0) break;
    out.append(body.substr(line_end + 2, size));
    body.remove_prefix(std::min(body.size(), line_end + 2 + size + 2));
  }
  return out;
}

uint64_t JsonNumber(const std::string& json, const std::string& key) {
  const std::string field = "\"" + key + "\":";
  const size_t at = json.find(field);
  return at == std::string::npos ? 0 : std::stoull(json.substr(at + field.size()));
}

std::string HeaderValue(std::string_view head, std::string_view name) {
  std::string lower_head(head);
  std::string lower_name(name);
  for (auto* text : {&lower_head, &lower_name}) {
    std::transform(text->begin(), text->end(), text->begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  size_t at = lower_head.find("\r\n" + lower_name + ":");
  if (at == std::string::npos) return "";
  size_t start = at + 2 + name.size() + 1;
  size_t end = head.find("\r\n", start);
  std::string value(head.substr(start, end - start));
  value.erase(0, value.find_first_not_of(' '));
  return value;
}

SimpleResponse HttpRequest(uint16_t port, std::string_view method, std::string_view target,
                           std::string_view extra_headers, std::chrono::milliseconds timeout) {
  RawConnection connection(port);
  connection.Send(std::string(method) + " " + std::string(target) +
                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                  std::string(extra_headers) + "\r\n");
  connection.WaitForClose(timeout);
  const std::string& raw = connection.received();
  SimpleResponse response;
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return response;
  response.head = raw.substr(0, head_end + 2);
  if (raw.size() > 12) response.status = std::stoi(raw.substr(9, 3));
  std::string body = raw.substr(head_end + 4);
  response.body =
      HeaderValue(response.head, "transfer-encoding") == "chunked" ? Dechunk(body) : body;
  return response;
}

}  // namespace apim::testing

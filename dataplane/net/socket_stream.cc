#include "dataplane/net/socket_stream.h"

#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <cstring>

#include "common/tls/pem.h"
#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

SocketStream::Tried Failed(int error) {
  return {0, SocketStream::Wait::kNone,
          boost::system::error_code(error, boost::system::system_category())};
}

}  // namespace

SocketStream::Tried SocketStream::TryRead(char* into, size_t size) {
  if (!ssl_) {
    // MSG_DONTWAIT: a read that would block returns EAGAIN, whatever the socket's mode.
    for (;;) {
      const ssize_t got = ::recv(socket_.native_handle(), into, size, MSG_DONTWAIT);
      if (got >= 0) return {static_cast<size_t>(got), Wait::kNone, {}};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, Wait::kReadable, {}};
      return Failed(errno);
    }
  }
  ERR_clear_error();
  const int got = SSL_read(ssl_.get(), into, static_cast<int>(std::min<size_t>(size, INT32_MAX)));
  if (got > 0) return {static_cast<size_t>(got), Wait::kNone, {}};
  return TlsOutcome(got, /*reading=*/true);
}

SocketStream::Tried SocketStream::TryWrite(const char* from, size_t size) {
  if (!ssl_) {
    const iovec part{const_cast<char*>(from), size};
    return TryWrite(&part, 1);
  }
  ERR_clear_error();
  const int sent = SSL_write(ssl_.get(), from, static_cast<int>(std::min<size_t>(size, INT32_MAX)));
  if (sent > 0) return {static_cast<size_t>(sent), Wait::kNone, {}};
  return TlsOutcome(sent, /*reading=*/false);
}

SocketStream::Tried SocketStream::TlsOutcome(int result, bool reading) {
  const int error = SSL_get_error(ssl_.get(), result);
  if (error == SSL_ERROR_WANT_READ) return {0, Wait::kReadable, {}};
  if (error == SSL_ERROR_WANT_WRITE) return {0, Wait::kWritable, {}};
  if (reading && error == SSL_ERROR_ZERO_RETURN) return {};  // close_notify: the end.
  if (error == SSL_ERROR_SYSCALL) {
    // No errno: the peer closed the connection; the end for a read, a broken pipe for a write.
    if (errno != 0) return Failed(errno);
    return reading ? Tried{} : Failed(EPIPE);
  }
  tls_error_ = std::make_unique<std::string>(tls::OpenSslErrorText("TLS error"));
  return Failed(EPROTO);  // A broken record or an alert from the peer.
}

SocketStream::Tried SocketStream::TryWrite(const iovec* parts, size_t count) {
  if (!ssl_) {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(parts);
    message.msg_iovlen = count;
    for (;;) {
      // MSG_NOSIGNAL: a peer that went away is an error here, not a SIGPIPE.
      const ssize_t sent =
          ::sendmsg(socket_.native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent >= 0) return {static_cast<size_t>(sent), Wait::kNone, {}};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, Wait::kWritable, {}};
      return Failed(errno);
    }
  }
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += parts[i].iov_len;
  // An event and its framing as one record: one encryption, one packet.
  if (count > 1 && total <= kMaxWrite) {
    char joined[kMaxWrite];
    size_t at = 0;
    for (size_t i = 0; i < count; ++i) {
      std::memcpy(joined + at, parts[i].iov_base, parts[i].iov_len);
      at += parts[i].iov_len;
    }
    return TryWrite(joined, total);
  }
  Tried written;
  for (size_t i = 0; i < count; ++i) {
    const Tried tried = TryWrite(static_cast<const char*>(parts[i].iov_base), parts[i].iov_len);
    written.bytes += tried.bytes;
    if (tried.bytes < parts[i].iov_len) {
      written.wait = tried.wait;
      if (written.bytes == 0) written.error = tried.error;
      break;
    }
  }
  return written;
}

void SocketStream::Shutdown() {
  if (ssl_ && SSL_is_init_finished(ssl_.get())) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());  // Try-now: a client that does not read does not get it.
    ERR_clear_error();
  }
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<boost::system::error_code> SocketStream::WaitReadable() {
  // Bytes OpenSSL has read and not handed out yet would never wake the socket.
  if (ssl_ && SSL_has_pending(ssl_.get())) co_return boost::system::error_code{};
  auto [error] =
      co_await socket_.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
  co_return error;
}

asio::awaitable<boost::system::error_code> SocketStream::Handshake(
    std::chrono::steady_clock::duration timeout, std::string& failure,
    std::string (*explain)(SSL*)) {
  SocketDeadline deadline(socket_, timeout);
  for (;;) {
    ERR_clear_error();
    const int done = SSL_do_handshake(ssl_.get());
    if (done == 1) co_return boost::system::error_code{};
    const int error = SSL_get_error(ssl_.get(), done);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
      failure = explain(ssl_.get());
      co_return boost::system::error_code(ECONNABORTED, boost::system::system_category());
    }
    const tcp::socket::wait_type wait =
        error == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write;
    auto [waited] = co_await socket_.async_wait(wait, asio::as_tuple(asio::use_awaitable));
    if (deadline.expired()) {
      failure = "the TLS handshake did not finish in time";
      co_return boost::beast::error::timeout;
    }
    if (waited) {
      failure = waited.message();
      co_return waited;
    }
  }
}

}  // namespace apim::dataplane

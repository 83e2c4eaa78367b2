#pragma once
// A TCP connection, plaintext or TLS, as both sides of an exchange use it (a client's connection
// and a backend's): Beast reads and writes through it (an AsyncReadStream and AsyncWriteStream),
// and the relay and the HTTP/1 codec read and write it try-now. TLS is OpenSSL on the socket
// itself rather than asio::ssl::stream, which holds two 17 KiB buffers for a connection's whole
// life and cannot be used try-now; here OpenSSL frees its buffers while the connection idles
// (SSL_MODE_RELEASE_BUFFERS), and an open stream mostly idles.

#include <openssl/ssl.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace apim::dataplane {

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

class SocketStream {
 public:
  using executor_type = boost::asio::any_io_executor;

  explicit SocketStream(boost::asio::ip::tcp::socket socket, SslPtr ssl = nullptr)
      : socket_(std::move(socket)), ssl_(std::move(ssl)) {
    // OpenSSL reads and writes the descriptor itself: it must never block the event loop. (Asio
    // makes a socket non-blocking only once it starts an operation of its own on it.)
    boost::system::error_code ignored;
    if (ssl_) socket_.non_blocking(true, ignored);
  }

  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  SSL* ssl() const { return ssl_.get(); }
  // What OpenSSL said when a TLS read or write last failed (a broken record, an alert such as
  // "certificate required"); empty otherwise.
  const std::string& tls_error() const {
    static const std::string kNone;
    return tls_error_ ? *tls_error_ : kNone;
  }

  // What a try-now read or write did: `bytes` > 0 moved; otherwise wait for `wait` and try
  // again, or the stream ended (no error) or failed.
  enum class Wait { kNone, kReadable, kWritable };
  struct Tried {
    size_t bytes = 0;
    Wait wait = Wait::kNone;
    boost::system::error_code error;
  };
  Tried TryRead(char* into, size_t size);
  Tried TryWrite(const char* from, size_t size);
  // Writes the parts in order as far as the connection takes them now: one sendmsg, or over TLS
  // one record when they fit in one.
  Tried TryWrite(const iovec* parts, size_t count);

  // TLS only: the handshake, either side (the SSL says which), within `timeout`
  // (beast::error::timeout past it). On failure `failure` says why: `explain(ssl)` when OpenSSL
  // refused (e.g. the verification result), else what the socket said.
  boost::asio::awaitable<boost::system::error_code> Handshake(
      std::chrono::steady_clock::duration timeout, std::string& failure,
      std::string (*explain)(SSL*));
  // TLS: sends close_notify if the connection takes it now; then shuts the socket down both ways.
  void Shutdown();

  // Waits until a read would find something (bytes, the end, an error), without reading. For
  // where the peer is known to send only later (the next request of a client that waits for this
  // response; the response to a request just sent): reading at once, as a read operation does,
  // would fail and cost a system call. Cancelled like any operation on the socket.
  boost::asio::awaitable<boost::system::error_code> WaitReadable();

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (!ssl_) return socket_.async_read_some(buffers, std::forward<Token>(token));
    return boost::asio::async_compose<Token, void(boost::system::error_code, size_t)>(
        TlsIo{*this, FirstBuffer<boost::asio::mutable_buffer>(buffers), {}, false}, token, socket_);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (!ssl_) return socket_.async_write_some(buffers, std::forward<Token>(token));
    // Beast hands a head over in many small buffers: they go as one TLS record.
    std::string bytes;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && bytes.size() < kMaxWrite; ++it) {
      const boost::asio::const_buffer buffer(*it);
      bytes.append(static_cast<const char*>(buffer.data()),
                   std::min(buffer.size(), kMaxWrite - bytes.size()));
    }
    return boost::asio::async_compose<Token, void(boost::system::error_code, size_t)>(
        TlsIo{*this, {}, std::move(bytes), true}, token, socket_);
  }

 private:
  static constexpr size_t kMaxWrite = 16 * 1024;

  // What an SSL_read (`reading`) or SSL_write that moved nothing and returned `result` means.
  Tried TlsOutcome(int result, bool reading);

  template <typename Buffer, typename Buffers>
  static Buffer FirstBuffer(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      Buffer buffer(*it);
      if (buffer.size() > 0) return buffer;
    }
    return Buffer();
  }

  // One TLS read or write: tried at once, then after each wait the socket needs. Never completes
  // inside the initiating call (a result ready at once is posted).
  struct TlsIo {
    SocketStream& stream;
    boost::asio::mutable_buffer into;
    std::string from;
    bool write;
    std::optional<Tried> ready = std::nullopt;

    template <typename Self>
    void operator()(Self& self, boost::system::error_code error = {}) {
      if (ready) return Complete(self, *ready);
      if (error) return self.complete(error, 0);
      const bool empty = write ? from.empty() : into.size() == 0;
      const Tried tried = empty   ? Tried{}
                          : write ? stream.TryWrite(from.data(), from.size())
                                  : stream.TryRead(static_cast<char*>(into.data()), into.size());
      if (tried.bytes == 0 && tried.wait != Wait::kNone) {
        return stream.socket_.async_wait(tried.wait == Wait::kReadable
                                             ? boost::asio::ip::tcp::socket::wait_read
                                             : boost::asio::ip::tcp::socket::wait_write,
                                         std::move(self));
      }
      ready = tried;
      if (empty) ready->error = {};
      boost::asio::post(stream.get_executor(), std::move(self));
    }

    template <typename Self>
    void Complete(Self& self, const Tried& tried) {
      if (tried.bytes > 0 || (write ? from.empty() : into.size() == 0)) {
        return self.complete({}, tried.bytes);
      }
      self.complete(tried.error ? tried.error : boost::asio::error::eof, 0);
    }
  };

  boost::asio::ip::tcp::socket socket_;
  SslPtr ssl_;
  std::unique_ptr<std::string> tls_error_;  // Rarely set: a pointer keeps every stream smaller.
};

}  // namespace apim::dataplane

#include "tests/support/h2_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <stdexcept>

namespace apim::testing {

using Clock = std::chrono::steady_clock;

namespace {

// Connecting, the TLS handshake and the first flush each get this long.
constexpr auto kSetupTimeout = std::chrono::seconds(10);
// Bytes taken from nghttp2 before writing them: bounds memory when the peer does not read.
constexpr size_t kMaxUnsent = 1 << 20;
// Bytes read per pump step before done() is asked again.
constexpr size_t kMaxReadPerStep = 1 << 20;

// What this client offers, in ALPN's wire form: each name after its length.
std::string AlpnOffer(const std::string& list) {
  const std::string wire = AlpnWire(list);
  return wire.find("\x02h2") == std::string::npos ? AlpnWire("h2") : wire;
}

int MillisecondsLeft(Clock::time_point deadline) {
  // Rounded up: a wait never ends before its deadline.
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
}

// False on timeout. Interrupted polls are retried with what is left of the deadline.
bool PollUntil(int fd, short events, Clock::time_point deadline, short* revents) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int ready = ::poll(&p, 1, MillisecondsLeft(deadline));
    if (ready > 0) {
      *revents = p.revents;
      return true;
    }
    if (ready == 0 || errno != EINTR) return false;
  }
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

nghttp2_nv Field(std::string_view name, std::string_view value) {
  // nghttp2 copies the fields when the request is submitted, and only reads them.
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

std::string H2Response::header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (EqualsIgnoringCase(field, name)) return value;
  }
  return "";
}

// The nghttp2 callbacks, each a short step into the connection's state. None throws: nghttp2 is C.
struct H2Connection::Callbacks {
  static H2Connection& Self(void* user_data) { return *static_cast<H2Connection*>(user_data); }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H2Connection& self = Self(user_data);
    // A block after the final response's is trailers; one after a 1xx is the response.
    self.in_trailers_[frame->hd.stream_id] = self.responses_[frame->hd.stream_id].status >= 200;
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H2Connection& self = Self(user_data);
    const int32_t stream = frame->hd.stream_id;
    H2Response& response = self.responses_[stream];
    if (self.in_trailers_[stream]) {
      response.trailers.emplace_back(AsView(name, namelen), AsView(value, valuelen));
      return 0;
    }
    response.headers.emplace_back(AsView(name, namelen), AsView(value, valuelen));
    if (AsView(name, namelen) == ":status") {
      // nghttp2 has checked it is three digits before passing it on.
      response.status = std::atoi(response.headers.back().second.c_str());
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream, const uint8_t* data,
                         size_t len, void* user_data) {
    H2Connection& self = Self(user_data);
    self.responses_[stream].body.append(reinterpret_cast<const char*>(data), len);
    nghttp2_session_consume_connection(session, len);
    if (auto held = self.held_.find(stream); held != self.held_.end()) {
      held->second += len;
    } else {
      nghttp2_session_consume_stream(session, stream, len);
    }
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H2Connection& self = Self(user_data);
    switch (frame->hd.type) {
      case NGHTTP2_DATA:
      case NGHTTP2_HEADERS:
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
          self.responses_[frame->hd.stream_id].end_stream = true;
        }
        break;
      case NGHTTP2_RST_STREAM:  // Comes before the stream's OnStreamClose.
        self.rst_received_.insert(frame->hd.stream_id);
        break;
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) self.settings_received_ = true;
        break;
      case NGHTTP2_GOAWAY:
        self.goaways_.push_back(
            {frame->goaway.error_code, frame->goaway.last_stream_id,
             std::string(AsView(frame->goaway.opaque_data, frame->goaway.opaque_data_len))});
        break;
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream, uint32_t error_code, void* user_data) {
    H2Connection& self = Self(user_data);
    H2Response& response = self.responses_[stream];
    response.closed = true;
    response.reset_code = error_code;
    response.reset = self.rst_received_.count(stream) > 0 ||
                     (error_code != NGHTTP2_NO_ERROR && self.reset_by_us_.count(stream) == 0);
    self.bodies_.erase(stream);
    self.held_.erase(stream);
    self.in_trailers_.erase(stream);
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t stream, uint8_t* buffer, size_t length,
                          uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
    H2Connection& self = Self(user_data);
    auto found = self.bodies_.find(stream);
    if (found == self.bodies_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    OutgoingBody& body = found->second;
    const size_t size = std::min(length, body.data.size() - body.offset);
    std::memcpy(buffer, body.data.data() + body.offset, size);
    body.offset += size;
    if (body.offset == body.data.size()) {
      body.data.clear();
      body.offset = 0;
      if (body.ended) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      } else if (size == 0) {
        body.deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    } else if (body.offset > body.data.size() / 2) {
      body.data.erase(0, body.offset);  // Keeps a long upload's memory bounded.
      body.offset = 0;
    }
    return static_cast<ssize_t>(size);
  }
};

H2Connection::H2Connection(uint16_t port, H2Options options) : options_(std::move(options)) {
  // OpenSSL writes with write(): a server that has closed must fail the write, not kill the test.
  static const bool ignore_sigpipe = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)ignore_sigpipe;
  try {
    Connect(port);
    if (options_.tls) Handshake(port, *options_.tls);

    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::OnDataChunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::OnStreamClose);
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    // Windows open only as the test consumes: that is how StopReading holds one stream.
    nghttp2_option_set_no_auto_window_update(option, 1);
    const int created = nghttp2_session_client_new2(&session_, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    if (created != 0) {
      throw std::runtime_error(std::string("nghttp2_session_client_new2: ") +
                               nghttp2_strerror(created));
    }
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window_size}};
    // The preface goes with the first frame nghttp2 sends; the window opens after the SETTINGS.
    if (const int rv =
            nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
        rv != 0) {
      throw std::runtime_error(std::string("nghttp2_submit_settings: ") + nghttp2_strerror(rv));
    }
    if (const int rv = nghttp2_session_set_local_window_size(
            session_, NGHTTP2_FLAG_NONE, 0, static_cast<int32_t>(options_.connection_window));
        rv != 0) {
      throw std::runtime_error(std::string("nghttp2_session_set_local_window_size: ") +
                               nghttp2_strerror(rv));
    }
    if (!Flush(kSetupTimeout)) {
      throw std::runtime_error(
          "cannot send the HTTP/2 preface to 127.0.0.1:" + std::to_string(port) + ": " +
          (error_.empty() ? "timed out" : error_));
    }
  } catch (...) {
    Release();
    throw;
  }
}

H2Connection::~H2Connection() { Release(); }

void H2Connection::Release() {
  nghttp2_session_del(session_);
  session_ = nullptr;
  Close();
  tls_.reset();
}

void H2Connection::Connect(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int error = 0;
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    error = errno;
    short revents = 0;
    if (error == EINPROGRESS) {
      error = ETIMEDOUT;
      if (PollUntil(fd_, POLLOUT, Clock::now() + kSetupTimeout, &revents)) {
        socklen_t size = sizeof error;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size);
      }
    }
  }
  if (error != 0) {
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " +
                             std::strerror(error));
  }
  // Each frame leaves when nghttp2 hands it over, as a browser's would: tests time them.
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void H2Connection::Handshake(uint16_t port, const TlsClient& tls) {
  tls_ = std::make_unique<TlsClientState>(fd_, tls, AlpnOffer(tls.alpn));
  // The socket is non-blocking: SSL_write may take part of a buffer, and is retried from a
  // buffer that has since grown (and moved).
  SSL_set_mode(tls_->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A server that closes without close_notify has still closed: tests wait for exactly that.
  SSL_set_options(tls_->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
  const std::string peer = "127.0.0.1:" + std::to_string(port);
  const auto deadline = Clock::now() + kSetupTimeout;
  for (;;) {
    const int done = SSL_connect(tls_->ssl);
    if (done == 1) break;
    const int error = SSL_get_error(tls_->ssl, done);
    short revents = 0;
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      if (PollUntil(fd_, error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, &revents)) {
        continue;
      }
      throw std::runtime_error("TLS handshake with " + peer + " timed out");
    }
    throw std::runtime_error("TLS handshake with " + peer +
                             " failed: " + tls_->HandshakeFailure(done));
  }
  const unsigned char* chosen = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(tls_->ssl, &chosen, &size);
  const std::string protocol(reinterpret_cast<const char*>(chosen), size);
  if (protocol != "h2") {
    throw std::runtime_error(peer + " chose ALPN \"" + protocol + "\", not \"h2\"");
  }
}

int32_t H2Connection::Submit(std::string_view method, std::string_view path,
                             const H2Fields& headers, bool with_body) {
  const std::string_view scheme = options_.tls ? "https" : "http";
  std::vector<nghttp2_nv> fields = {Field(":method", method), Field(":scheme", scheme),
                                    Field(":authority", options_.authority), Field(":path", path)};
  for (const auto& [name, value] : headers) fields.push_back(Field(name, value));
  nghttp2_data_provider provider{};
  provider.read_callback = Callbacks::ReadBody;
  const int32_t stream = nghttp2_submit_request(session_, nullptr, fields.data(), fields.size(),
                                                with_body ? &provider : nullptr, nullptr);
  if (stream < 0) {
    throw std::runtime_error(std::string("nghttp2_submit_request: ") + nghttp2_strerror(stream));
  }
  responses_.try_emplace(stream);
  // nghttp2 asks for the body only from mem_send, so it is in place before the first read.
  if (with_body) bodies_.try_emplace(stream);
  return stream;
}

int32_t H2Connection::Request(std::string_view method, std::string_view path, H2Fields headers,
                              std::optional<std::string> body) {
  const int32_t stream = Submit(method, path, headers, body.has_value());
  if (body) {
    bodies_[stream].data = std::move(*body);
    bodies_[stream].ended = true;
  }
  return stream;
}

int32_t H2Connection::StartRequest(std::string_view method, std::string_view path,
                                   H2Fields headers) {
  return Submit(method, path, headers, /*with_body=*/true);
}

void H2Connection::SendBody(int32_t stream, std::string_view data, bool end_stream) {
  if (response(stream).closed) return;  // The server reset it, or answered early: nowhere to go.
  auto found = bodies_.find(stream);
  if (found == bodies_.end() || found->second.ended) {
    throw std::logic_error("stream " + std::to_string(stream) + " takes no more body");
  }
  OutgoingBody& body = found->second;
  body.data += data;
  body.ended = end_stream;
  if (body.deferred) {
    body.deferred = false;
    nghttp2_session_resume_data(session_, stream);
  }
}

void H2Connection::Reset(int32_t stream, uint32_t error_code) {
  reset_by_us_.insert(stream);
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream, error_code);
}

void H2Connection::StopReading(int32_t stream) { held_.emplace(stream, 0); }

void H2Connection::ResumeReading(int32_t stream) {
  auto held = held_.find(stream);
  if (held == held_.end()) return;
  nghttp2_session_consume_stream(session_, stream, held->second);
  held_.erase(held);
}

bool H2Connection::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    // Whatever is due goes out before done() is asked: a Reset must reach the server even when
    // closing the stream is all the caller waits for.
    if (!closed_ && TakeOutput()) WriteSome();
    if (done()) return true;
    if (closed_) return false;
    const bool buffered = tls_ && SSL_pending(tls_->ssl) > 0;
    short revents = POLLIN;
    if (!buffered && !PollUntil(fd_, static_cast<short>(POLLIN | (unsent_.empty() ? 0 : POLLOUT)),
                                deadline, &revents)) {
      return done();
    }
    if ((revents & POLLOUT) != 0 && !WriteSome()) continue;
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) ReadSome();
  }
}

bool H2Connection::Flush(std::chrono::milliseconds timeout) {
  return RunUntil([this] { return unsent_.empty() && nghttp2_session_want_write(session_) == 0; },
                  timeout);
}

bool H2Connection::WaitForBody(int32_t stream, std::string_view needle,
                               std::chrono::milliseconds timeout) {
  const H2Response& got = response(stream);
  return RunUntil([&] { return got.body.find(needle) != std::string::npos; }, timeout);
}

bool H2Connection::WaitForClose(int32_t stream, std::chrono::milliseconds timeout) {
  const H2Response& got = response(stream);
  return RunUntil([&] { return got.closed; }, timeout);
}

bool H2Connection::WaitForSettings(std::chrono::milliseconds timeout) {
  return RunUntil([this] { return settings_received_; }, timeout);
}

bool H2Connection::WaitForGoaway(std::chrono::milliseconds timeout) {
  return RunUntil([this] { return !goaways_.empty(); }, timeout);
}

bool H2Connection::WaitForConnectionClose(std::chrono::milliseconds timeout) {
  return RunUntil([this] { return closed_; }, timeout);
}

const H2Response& H2Connection::response(int32_t stream) const {
  auto found = responses_.find(stream);
  if (found == responses_.end()) {
    throw std::out_of_range("no request on stream " + std::to_string(stream));
  }
  return found->second;
}

std::optional<H2Goaway> H2Connection::goaway() const {
  if (goaways_.empty()) return std::nullopt;
  return goaways_.back();
}

uint32_t H2Connection::remote_setting(nghttp2_settings_id id) const {
  return nghttp2_session_get_remote_settings(session_, id);
}

bool H2Connection::TakeOutput() {
  while (unsent_.size() < kMaxUnsent) {
    const uint8_t* data = nullptr;
    const ssize_t size = nghttp2_session_mem_send(session_, &data);
    if (size < 0) {
      Fail(std::string("nghttp2_session_mem_send: ") + nghttp2_strerror(static_cast<int>(size)));
      return false;
    }
    if (size == 0) break;
    unsent_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
  }
  return true;
}

bool H2Connection::WriteSome() {
  while (!unsent_.empty()) {
    ssize_t sent = 0;
    if (tls_) {
      const int size = static_cast<int>(std::min<size_t>(unsent_.size(), 1 << 30));
      sent = SSL_write(tls_->ssl, unsent_.data(), size);
      if (sent <= 0) {
        const int error = SSL_get_error(tls_->ssl, static_cast<int>(sent));
        if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) return true;
        Fail("TLS write failed: " +
             (error == SSL_ERROR_SYSCALL ? std::string(std::strerror(errno)) : OpenSslError()));
        return false;
      }
    } else {
      sent = ::send(fd_, unsent_.data(), unsent_.size(), MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
        Fail(std::string("send failed: ") + std::strerror(errno));
        return false;
      }
    }
    unsent_.erase(0, static_cast<size_t>(sent));
  }
  return true;
}

bool H2Connection::ReadSome() {
  char buffer[65536];
  for (size_t total = 0; total < kMaxReadPerStep;) {
    ssize_t size = 0;
    if (tls_) {
      size = SSL_read(tls_->ssl, buffer, sizeof buffer);
      if (size <= 0) {
        const int error = SSL_get_error(tls_->ssl, static_cast<int>(size));
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return true;
        // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare TCP close: a clean close.
        if (error == SSL_ERROR_ZERO_RETURN) {
          closed_ = true;
          return false;
        }
        Fail("TLS read failed: " +
             (error == SSL_ERROR_SYSCALL ? std::string(std::strerror(errno)) : OpenSslError()));
        return false;
      }
    } else {
      size = ::recv(fd_, buffer, sizeof buffer, 0);
      if (size == 0) {
        closed_ = true;
        return false;
      }
      if (size < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
        Fail(std::string("recv failed: ") + std::strerror(errno));
        return false;
      }
    }
    total += static_cast<size_t>(size);
    const ssize_t fed = nghttp2_session_mem_recv(session_, reinterpret_cast<uint8_t*>(buffer),
                                                 static_cast<size_t>(size));
    if (fed < 0) {
      Fail(std::string("nghttp2_session_mem_recv: ") + nghttp2_strerror(static_cast<int>(fed)));
      return false;
    }
  }
  return true;
}

void H2Connection::Fail(std::string why) {
  closed_ = true;
  if (error_.empty()) error_ = std::move(why);
}

void H2Connection::Close(bool reset) {
  if (fd_ < 0) return;
  if (reset) {
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  } else {
    if (tls_ && tls_->ssl != nullptr && !closed_) SSL_shutdown(tls_->ssl);  // No waiting.
    ::shutdown(fd_, SHUT_WR);
    // Closing a socket with unread bytes sends RST instead of FIN: drop what has arrived.
    char discard[65536];
    while (::recv(fd_, discard, sizeof discard, MSG_DONTWAIT) > 0) {
    }
  }
  ::close(fd_);
  fd_ = -1;
  closed_ = true;
}

}  // namespace apim::testing

#include "dataplane/codec/http1/http1_downstream.h"

#include <sys/uio.h>

#include <boost/asio/write.hpp>
#include <charconv>

#include "dataplane/exchange/exchange_io.h"
#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The head as the bytes that go on the wire.
std::string SerializedHead(http::response<http::empty_body>& head) {
  http::response_serializer<http::empty_body> serializer(head);
  serializer.split(true);
  std::string bytes;
  beast::error_code error;
  while (!error && !serializer.is_header_done()) {
    size_t size = 0;
    serializer.next(error, [&](beast::error_code&, const auto& buffers) {
      for (const auto buffer : beast::buffers_range_ref(buffers)) {
        bytes.append(static_cast<const char*>(buffer.data()), buffer.size());
      }
      size = beast::buffer_bytes(buffers);
    });
    serializer.consume(size);
  }
  return bytes;
}

}  // namespace

Http1Downstream::Http1Downstream(SocketStream& client, beast::flat_buffer& buffer,
                                 std::unique_ptr<RequestParser> parser, const ProxyLimits& limits)
    : client_(client),
      buffer_(buffer),
      parser_(std::move(parser)),
      limits_(limits),
      version_(parser_->get().version()),
      keep_alive_(parser_->get().keep_alive()) {}

void Http1Downstream::ReleaseRequestHead() {
  if (parser_->is_done()) {
    parser_.reset();
    return;
  }
  parser_->get().clear();
  parser_->get().target({});  // clear() keeps the target's allocation.
}

std::optional<uint64_t> Http1Downstream::request_content_length() const {
  if (!parser_) return std::nullopt;
  if (auto length = parser_->content_length()) return *length;
  return std::nullopt;
}

awaitable<void> Http1Downstream::AskForBody() {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  co_await WriteAll(kContinue);
}

awaitable<BodyRead> Http1Downstream::ReadBody(std::span<char> into) {
  // Beast reads a body through the connection's read buffer, each read at most what that buffer
  // has room for: 512 bytes once it has been given back after a head. While a body is read the
  // buffer has a body buffer's worth of room; it is given back once the body has been read, so
  // that an open stream which follows does not keep it.
  buffer_.reserve(kBodyBufferBytes);
  RequestParser& parser = *parser_;
  parser.get().body().data = into.data();
  parser.get().body().size = into.size();
  SocketDeadline deadline(client_.socket(), limits_.idle_timeout);
  auto [error, read] = co_await http::async_read_some(client_, buffer_, parser, kNoThrow);
  if (error == http::error::need_buffer) error = {};
  if ((error || parser.is_done()) && buffer_.size() == 0) buffer_.shrink_to_fit();
  co_return BodyRead{error, into.size() - parser.get().body().size};
}

awaitable<bool> Http1Downstream::SendAnswer(http::response<http::string_body> response) {
  // An unread request body would be taken for the next request: the connection closes then.
  keep_alive_ = keep_alive_ && request_body_done();
  response.version(version_);
  response.keep_alive(keep_alive_);
  SocketDeadline deadline(client_.socket(), limits_.idle_timeout);
  auto [error, written] = co_await http::async_write(client_, response, kNoThrow);
  if (error) broken_ = true;
  co_return !error;
}

void Http1Downstream::SendHead(http::response<http::empty_body>& head, ResponseBody body) {
  head.version(version_);
  if (body == ResponseBody::kUnknownLength) {
    if (version_ >= 11) {
      chunked_ = true;
      head.chunked(true);
    } else {
      keep_alive_ = false;  // HTTP/1.0: the body ends when the connection does.
    }
  }
  head.keep_alive(keep_alive_);
  held_ = SerializedHead(head);
}

Sent Http1Downstream::SendBody(std::string_view piece) { return Write(piece); }

Sent Http1Downstream::Flush() { return Write({}); }

Sent Http1Downstream::Write(std::string_view piece) {
  char size_line[16 + kCrlf.size()];
  iovec parts[4];
  size_t count = 0;
  auto add = [&](std::string_view bytes) {
    if (!bytes.empty()) parts[count++] = {const_cast<char*>(bytes.data()), bytes.size()};
  };
  add(held_);
  if (chunked_ && !piece.empty()) {
    char* end = std::to_chars(size_line, size_line + 16, piece.size(), 16).ptr;
    end = std::copy(kCrlf.begin(), kCrlf.end(), end);
    add(std::string_view(size_line, static_cast<size_t>(end - size_line)));
    add(piece);
    add(kCrlf);
  } else {
    add(piece);
  }
  if (count == 0) return Sent::kTaken;
  const SocketStream::Tried written = client_.TryWrite(parts, count);
  if (written.bytes == 0 && written.wait == SocketStream::Wait::kNone) {
    broken_ = true;
    return Sent::kGone;
  }
  // The piece lives in a buffer that is reused once the caller waits: keep what was not taken.
  // (Over TLS, what OpenSSL did not take is what it wants offered again.)
  size_t skip = written.bytes;
  for (size_t i = 0; i < count; ++i) {
    const size_t size = parts[i].iov_len;
    if (skip < size)
      unsent_.append(static_cast<const char*>(parts[i].iov_base) + skip, size - skip);
    skip -= std::min(skip, size);
  }
  std::string().swap(held_);
  return unsent_.empty() ? Sent::kTaken : Sent::kKept;
}

void Http1Downstream::WhenTaken(asio::any_completion_handler<void(bool)> handler) {
  // With no timer: a client that stops reading stalls only its own relay, and the stream
  // clock's idle timeout ends it.
  asio::async_write(
      client_, asio::buffer(unsent_),
      [this, handler = std::move(handler)](const beast::error_code& error, size_t) mutable {
        std::string().swap(unsent_);
        if (error) broken_ = true;
        std::move(handler)(!error);
      });
}

awaitable<bool> Http1Downstream::Finish() {
  const std::string_view last = chunked_ ? kLastChunk : std::string_view();
  if (held_.empty() && unsent_.empty()) {
    if (last.empty()) co_return true;
    co_return co_await WriteAll(last);
  }
  std::string rest = std::move(held_) + std::move(unsent_);
  rest.append(last);
  held_.clear();
  unsent_.clear();
  co_return co_await WriteAll(rest);
}

awaitable<bool> Http1Downstream::WriteAll(std::string_view bytes) {
  SocketDeadline deadline(client_.socket(), limits_.idle_timeout);
  auto [error, written] = co_await asio::async_write(client_, asio::buffer(bytes), kNoThrow);
  if (error) broken_ = true;
  co_return !error;
}

void Http1Downstream::Abort() {
  broken_ = true;
  beast::error_code ignored;
  client_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

AfterExchange Http1Downstream::after() const {
  return keep_alive_ && request_body_done() && !broken_ ? AfterExchange::kKeepAlive
                                                        : AfterExchange::kClose;
}

void Http1Downstream::CloseOnClientGone(asio::ip::tcp::socket& backend) {
  watch_.emplace(client_, backend, buffer_, limits_.max_request_header_bytes);
}

ClientState Http1Downstream::StopWatchingClient() {
  if (!watch_) return ClientState::kPresent;
  const ClientState state = watch_->overrun()       ? ClientState::kOverran
                            : watch_->client_gone() ? ClientState::kGone
                                                    : ClientState::kPresent;
  watch_.reset();
  return state;
}

}  // namespace apim::dataplane

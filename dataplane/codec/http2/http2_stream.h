#pragma once
// The downstream of one exchange on an HTTP/2 connection: the request nghttp2 received on a
// stream, and the response submitted to nghttp2, which frames it. A body piece is handed to
// nghttp2's data source and framed as far as the stream's and the connection's flow-control
// windows allow; what the windows (or a socket that takes nothing more) leave over is kept, at
// most one relay piece, and WhenTaken completes once nghttp2 has framed it. So a client that stops
// reading one stream holds that stream's backend only (the relay reads nothing more from it), and
// the other streams of the connection go on.

#include <nghttp2/nghttp2.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/codec/http2/http2_fields.h"
#include "dataplane/exchange/downstream.h"

namespace apim::dataplane {

class Http2Connection;

class Http2Stream final : public Downstream {
 public:
  Http2Stream(Http2Connection& connection, int32_t id);
  ~Http2Stream() override;
  int32_t id() const { return id_; }

  // --- Fed by the connection, from nghttp2's callbacks ---
  // A header field of the request; past `limit` bytes (name + value + 32 each, as HTTP/2 counts
  // them) the rest are dropped and header_list_too_large() says so.
  void AddField(std::string_view name, std::string_view value, size_t limit);
  // The request's head is complete (and with `end_stream`, so is the request).
  void HeadersComplete(bool end_stream);
  bool header_list_too_large() const { return header_list_too_large_; }
  // Request body bytes, kept until the exchange reads them; false when no exchange will.
  bool Received(std::string_view data);
  void RequestEnded();
  // nghttp2 sent the frame that ends the response.
  void EndSent();
  // The stream closed (a reset from the client, a protocol error, or the end of the exchange),
  // or the whole connection did.
  void Closed();
  // nghttp2's data source: copies up to `length` bytes of the response body into `into`.
  ssize_t ReadResponseBody(uint8_t* into, size_t length, uint32_t* flags);
  // The connection's exchange for this stream has started.
  bool started() const { return started_; }
  void Start() { started_ = true; }
  bool closed() const { return closed_; }
  bool end_sent() const { return end_sent_; }
  bool reset_sent() const { return reset_sent_; }
  // Request body received that the exchange did not read: its window is given back when the
  // exchange ends.
  size_t unread_body() const { return request_body_.size(); }

  // --- Downstream ---
  http::request_header<>& request() override { return request_; }
  bool secure() const override;
  void ReleaseRequestHead() override { request_ = {}; }
  bool request_body_done() const override { return request_ended_ && request_body_.empty(); }
  std::optional<uint64_t> request_content_length() const override { return content_length_; }
  boost::asio::awaitable<void> AskForBody() override;
  boost::asio::awaitable<BodyRead> ReadBody(std::span<char> into) override;

  boost::asio::awaitable<bool> SendAnswer(http::response<http::string_body> response) override;
  void SendHead(http::response<http::empty_body>& head, ResponseBody body) override;
  Sent SendBody(std::string_view piece) override;
  Sent Flush() override;
  void WhenTaken(boost::asio::any_completion_handler<void(bool)> handler) override;
  boost::asio::awaitable<bool> Finish() override;
  void Abort() override;
  // The connection carries other exchanges whatever becomes of this one.
  AfterExchange after() const override { return AfterExchange::kKeepAlive; }

  void CloseOnClientGone(boost::asio::ip::tcp::socket& backend) override;
  ClientState StopWatchingClient() override;

 private:
  // Hands the held response head (and a data source, unless it has no body) to nghttp2, once.
  void Submit();
  // Lets nghttp2 frame what the body source has, and writes it out.
  void Resume();
  // Waits until `done()` or `timeout` passes; Wake() makes it look again.
  template <typename Done>
  boost::asio::awaitable<bool> WaitUntil(Done done, std::chrono::steady_clock::duration timeout);
  void Wake();
  // Completes a WhenTaken handler (posted, never inline).
  void CompleteTaken(bool taken);

  Http2Connection& connection_;
  const int32_t id_;
  http::request_header<> request_;
  size_t header_bytes_ = 0;
  std::optional<uint64_t> content_length_;
  std::string request_body_;  // Received, not read yet: at most the stream's window.
  bool header_list_too_large_ = false;
  bool head_only_ = false;  // A HEAD request: the response has no body.
  bool headers_complete_ = false;
  bool request_ended_ = false;
  bool started_ = false;

  // The response head until it is submitted with the first piece of body (or Flush, Finish).
  std::optional<ResponseFields> held_;
  ResponseBody body_ = ResponseBody::kNone;
  bool submitted_ = false;
  // The body source: `offered_` is a piece of the relay's (only during SendBody), `kept_` what
  // nghttp2 did not take of earlier pieces (from `kept_from_` on).
  std::string_view offered_;
  std::string kept_;
  size_t kept_from_ = 0;
  bool body_complete_ = false;  // Finish: the source ends once it is empty.
  bool end_sent_ = false;
  bool closed_ = false;
  bool reset_sent_ = false;
  std::optional<boost::asio::any_completion_handler<void(bool)>> taken_;
  boost::asio::ip::tcp::socket* backend_ = nullptr;  // Closed at once if the client goes.
  // While WaitUntil waits (only then: an open stream does not keep a timer).
  std::unique_ptr<boost::asio::steady_timer> wait_;
};

}  // namespace apim::dataplane

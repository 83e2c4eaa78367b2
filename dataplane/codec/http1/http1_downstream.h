#pragma once
// The downstream of one exchange on an HTTP/1.1 connection: the request Beast parsed, and the
// response written to the connection's socket. Framing is chosen here: Content-Length when the
// length is known, chunked for HTTP/1.1 otherwise, close-delimited for HTTP/1.0. A chunk goes out
// as one sendmsg (over TLS, one record) of [held head][size line][piece][CRLF], with nothing copied
// unless the client does not take all of it at once.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>

#include "dataplane/codec/http1/client_close_watch.h"
#include "dataplane/exchange/downstream.h"
#include "dataplane/exchange/session_context.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

class Http1Downstream final : public Downstream {
 public:
  using RequestParser = http::request_parser<http::buffer_body>;
  // `parser` has read the request's head from `client`; `buffer` holds what was read past it.
  Http1Downstream(SocketStream& client, boost::beast::flat_buffer& buffer,
                  std::unique_ptr<RequestParser> parser, const ProxyLimits& limits);

  http::request_header<>& request() override { return parser_->get(); }
  bool secure() const override { return client_.ssl() != nullptr; }
  // Once the request was read whole, its parser is freed (a long stream keeps nothing of it);
  // otherwise only its fields and target are.
  void ReleaseRequestHead() override;
  bool request_body_done() const override { return !parser_ || parser_->is_done(); }
  std::optional<uint64_t> request_content_length() const override;
  boost::asio::awaitable<void> AskForBody() override;
  boost::asio::awaitable<BodyRead> ReadBody(std::span<char> into) override;

  boost::asio::awaitable<bool> SendAnswer(http::response<http::string_body> response) override;
  void SendHead(http::response<http::empty_body>& head, ResponseBody body) override;
  Sent SendBody(std::string_view piece) override;
  Sent Flush() override;
  void WhenTaken(boost::asio::any_completion_handler<void(bool)> handler) override;
  boost::asio::awaitable<bool> Finish() override;
  void Abort() override;
  AfterExchange after() const override;

  void CloseOnClientGone(boost::asio::ip::tcp::socket& backend) override;
  ClientState StopWatchingClient() override;

 private:
  // Writes the held head and `piece` (framed) as far as the client takes them now, keeping the
  // rest in unsent_.
  Sent Write(std::string_view piece);
  // Writes `bytes` whole within the idle timeout.
  boost::asio::awaitable<bool> WriteAll(std::string_view bytes);

  SocketStream& client_;
  boost::beast::flat_buffer& buffer_;
  std::unique_ptr<RequestParser> parser_;  // Null once released after the whole request.
  const ProxyLimits& limits_;
  std::string held_;    // The response head until it is written.
  std::string unsent_;  // What the client has not taken yet: usually nothing.
  std::optional<ClientCloseWatch> watch_;
  unsigned version_;  // Of the request, kept once its fields are released.
  bool keep_alive_;   // The request asks to keep the connection, and the response lets it.
  bool chunked_ = false;
  bool broken_ = false;  // A write failed, or the response was cut.
};

}  // namespace apim::dataplane

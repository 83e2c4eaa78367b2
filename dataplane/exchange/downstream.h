#pragma once
// The client's side of one exchange, as the exchange and the relay see it: the request as it
// arrived, and the way back for the response. A codec implements it: HTTP/1.1 over Beast
// (codec/http1) first; an HTTP/2 stream is the next. The codec owns everything of the wire: the
// protocol version of a head, how a body is framed (Content-Length, chunked, close-delimited; DATA
// frames), interim responses, and whether the connection carries another exchange.
//
// Response bodies are written try-now: a piece the client cannot take at once is kept by the
// downstream, and WhenTaken completes once it has all been taken. That wait is the backpressure:
// the relay reads nothing more from the backend meanwhile.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace apim::dataplane {

namespace http = boost::beast::http;

// Whether the client connection can carry another request once an exchange has ended.
enum class AfterExchange { kKeepAlive, kClose };

// The body that follows a response head, as far as the codec must know to frame it. A head with
// a known length carries it in its Content-Length.
enum class ResponseBody { kNone, kKnownLength, kUnknownLength };

// What a try-now write did: the client took all of it, the downstream kept what it did not take
// yet (wait with WhenTaken before the next write), or the client is gone.
enum class Sent { kTaken, kKept, kGone };

// What became of the client while a response was relayed. kOverran: it sent more than may be
// kept for after the response (pipelined requests, say), and the relay was ended for it.
enum class ClientState { kPresent, kGone, kOverran };

// The result of reading a piece of request body: how many bytes, or the error (the client went
// away, or its body's framing is malformed).
struct BodyRead {
  boost::system::error_code error;
  size_t bytes = 0;
};

class Downstream {
 public:
  virtual ~Downstream() = default;

  // --- The request ---
  // Its head. Admission changes it (a subscription key is taken out); once it has been
  // forwarded it is released, so that a long stream does not keep its fields.
  virtual http::request_header<>& request() = 0;
  // Whether it came over TLS (the scheme X-Forwarded-Proto tells the backend).
  virtual bool secure() const = 0;
  virtual void ReleaseRequestHead() = 0;
  virtual bool request_body_done() const = 0;
  // The body's length, when the client declared it.
  virtual std::optional<uint64_t> request_content_length() const = 0;
  // Tells a client that waits before sending its body (Expect: 100-continue) to send it.
  virtual boost::asio::awaitable<void> AskForBody() = 0;
  // Reads the next piece of the body into `into`, within the idle timeout.
  virtual boost::asio::awaitable<BodyRead> ReadBody(std::span<char> into) = 0;

  // --- The response ---
  // An answer the gateway makes, whole (a problem, a policy's, a cached response), within the
  // idle timeout. False when it could not be written.
  virtual boost::asio::awaitable<bool> SendAnswer(http::response<http::string_body> response) = 0;
  // The head of a response whose body follows. It is held and goes out with the first piece of
  // body (one write, one wake-up of the client), or with Flush or Finish.
  virtual void SendHead(http::response<http::empty_body>& head, ResponseBody body) = 0;
  // Writes a piece of body (never empty), framed as the codec frames it.
  virtual Sent SendBody(std::string_view piece) = 0;
  // Writes a head that is still held.
  virtual Sent Flush() = 0;
  // Completes with true once what was kept has all been taken, false if the client went away
  // first. No timer: the relay's stream clock ends a client that stops reading.
  virtual void WhenTaken(boost::asio::any_completion_handler<void(bool)> handler) = 0;
  // Ends the response cleanly: writes what is held or kept and the end of the body, within the
  // idle timeout. False when the client could not be reached.
  virtual boost::asio::awaitable<bool> Finish() = 0;
  // Ends the response uncleanly, so the client sees it cut (an event stream reconnects): the
  // HTTP/1.1 connection is shut down; an HTTP/2 stream would be reset. A write waiting to be
  // taken completes as gone. May be called more than once.
  virtual void Abort() = 0;
  // Whether the connection can carry another request now that the exchange has ended.
  virtual AfterExchange after() const = 0;

  // --- The client going away ---
  // While a response is relayed: when the client goes away (closes, resets its stream), the
  // downstream closes `backend` at once, which ends the relay's wait for it.
  virtual void CloseOnClientGone(boost::asio::ip::tcp::socket& backend) = 0;
  // Stops that watch and tells what became of the client.
  virtual ClientState StopWatchingClient() = 0;
};

}  // namespace apim::dataplane

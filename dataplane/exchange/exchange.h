#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/admin/access_log.h"
#include "dataplane/exchange/admission.h"
#include "dataplane/exchange/downstream.h"
#include "dataplane/exchange/exchange_io.h"
#include "dataplane/exchange/request_target.h"
#include "dataplane/exchange/session_context.h"
#include "dataplane/net/socket_stream.h"
#include "dataplane/relay/body_relay.h"

namespace apim::dataplane {

// What a phase that may end the exchange early returns: go on to the next phase, or the exchange
// ended there (it was answered, or the client is gone) and the connection goes on as said.
struct PhaseOutcome {
  PhaseOutcome() = default;                                         // Go on.
  PhaseOutcome(AfterExchange after) : ended(true), after(after) {}  // NOLINT: implicit on purpose
  bool ended = false;
  AfterExchange after = AfterExchange::kClose;
};

// One request and its response through the gateway: admit -> forward -> start the response ->
// relay its body -> finish. It speaks to the client only through its Downstream, so any codec
// can carry it. Lives in the coroutine frame of whatever serves the downstream, for the duration
// of the exchange.
class Exchange {
 public:
  Exchange(SessionContext& context, Downstream& downstream, std::string client_ip)
      : context_(context), downstream_(downstream) {
    const http::request_header<>& request = downstream.request();
    record_.client_ip = std::move(client_ip);
    record_.method = std::string(request.method_string());
    record_.target = RedactedTarget(request.target());
    is_head_ = request.method() == http::verb::head;
  }

  boost::asio::awaitable<AfterExchange> Run();
  // Ends an exchange that Run left by an exception: answers 500 if nothing was sent yet, and
  // logs and counts it like any other.
  boost::asio::awaitable<void> Fail(const std::string& reason);

 private:
  // What StartResponse settled about the response before its body is relayed.
  struct ResponseStart {
    PhaseOutcome outcome;  // Ended when the exchange already ended.
    bool relay = false;    // A body is to be relayed (else it was sent whole, or there is none).
    bool event_stream = false;
    bool client_gone = false;  // Found while the body that buffer-response read was sent.
    std::string first_piece;   // Read by buffer-response before it ran out of budget.
  };

  // Admission, and the answer when the request is not to be forwarded.
  boost::asio::awaitable<PhaseOutcome> AdmitOrAnswer();
  // Writes an answer the gateway makes (a problem, a policy's, a cached response): the one
  // place answers are written.
  boost::asio::awaitable<AfterExchange> Send(http::response<http::string_body> response);
  // Connects (or reuses a connection), sends the request and reads the response head; the
  // exchange ends here when that fails (the problem was answered).
  boost::asio::awaitable<PhaseOutcome> OpenUpstream(const Route& route);
  void NewResponseParser();
  void StoreInCache(const Route& route, const http::response<http::empty_body>& head,
                    const std::string& body);
  // Gives the downstream the response head, and the whole body when buffer-response applies.
  boost::asio::awaitable<ResponseStart> StartResponse(const Route& route, const TierLimits& tier);
  boost::asio::awaitable<AfterExchange> SendProblem(http::status status, std::string_view type,
                                                    std::string_view title, std::string detail);
  // Writes the request head, then the body: `buffered_body` when buffer-request-body applied,
  // else streamed from the client piece by piece. Returns the error and whether any body byte
  // was consumed from the client (then the request cannot be retried on another connection).
  boost::asio::awaitable<std::pair<boost::beast::error_code, bool>> SendRequest(
      SocketStream& upstream, http::request<http::buffer_body>& head, std::string& buffered_body);
  // buffer-request-body: reads the whole request body, holding its size in `reservation`. The
  // exchange ends here when it failed, was too large or did not fit in the buffer budget.
  boost::asio::awaitable<PhaseOutcome> ReadWholeRequestBody(std::string& body,
                                                            BufferReservation& reservation);
  // 502 (504 when it timed out): the TLS handshake with the backend failed, for `failure`.
  boost::asio::awaitable<AfterExchange> RefuseForTls(const Route& route,
                                                     boost::beast::error_code error,
                                                     const std::string& failure);
  // 503: the worker's buffer budget has no room for a body that must be buffered.
  boost::asio::awaitable<AfterExchange> RefuseForBudget();
  // 502: the response is larger than buffer-response may hold.
  boost::asio::awaitable<AfterExchange> RefuseLargeResponse(const Route& route);
  // The body buffer-response read, as far as the diagnostic setting logs it.
  void CaptureResponseBody(std::string_view body);
  void Finish(unsigned status);
  // The first bytes of the request body, where the diagnostic setting asks for them.
  void CaptureRequestBody(std::string_view bytes);

  SessionContext& context_;
  Downstream& downstream_;
  AccessRecord record_;
  Clock::time_point start_ = Clock::now();
  bool response_started_ = false;  // Something was written to the client.
  bool finished_ = false;          // The access record was written.
  // For request bodies and buffered responses, allocated when one is first carried.
  std::span<char> BodyBuffer() {
    if (buffer_.empty()) buffer_.resize(kBodyBufferBytes);
    return buffer_;
  }
  std::vector<char> buffer_;
  bool is_head_ = false;
  std::shared_ptr<const RuntimeSnapshot> snapshot_;  // Held for the whole exchange.
  Admission admission_;                              // Points into snapshot_.
  const DiagnosticConfig* diagnostics_ = nullptr;
  // The quotas whose bandwidth this exchange's bytes are charged to when it ends.
  std::vector<CallCount> bandwidth_;
  std::unique_ptr<SocketStream> upstream_;
  boost::beast::flat_buffer upstream_buffer_;
  std::optional<http::response_parser<http::buffer_body>> response_;
};

}  // namespace apim::dataplane

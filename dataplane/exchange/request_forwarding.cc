#include <boost/asio/write.hpp>

#include "common/str_cat.h"
#include "dataplane/config/route_table.h"
#include "dataplane/exchange/exchange.h"
#include "dataplane/exchange/http_forwarding.h"
#include "dataplane/net/socket_deadline.h"
#include "dataplane/net/tcp_keepalive.h"

namespace apim::dataplane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using tcp = asio::ip::tcp;

// Writes the request head, then streams the client's body (if any) piece by piece. Returns the
// error and whether any body byte was consumed from the client (then the request cannot be
// retried on another connection).
awaitable<PhaseOutcome> Exchange::ReadWholeRequestBody(std::string& body,
                                                       BufferReservation& reservation) {
  const size_t limit = context_.limits.max_buffered_body_bytes;
  // A known length is taken from the budget at once; a chunked body as it grows.
  if (!reservation.GrowTo(request_.content_length().value_or(0))) {
    co_return co_await RefuseForBudget();
  }
  std::span<char> buffer = BodyBuffer();
  RoomToReadBody room(client_buffer_);
  while (!request_.is_done()) {
    if (!reservation.GrowTo(body.size() + buffer.size())) co_return co_await RefuseForBudget();
    request_.get().body().data = buffer.data();
    request_.get().body().size = buffer.size();
    client_.expires_after(context_.limits.idle_timeout);
    auto [error, read] =
        co_await http::async_read_some(client_, client_buffer_, request_, kNoThrow);
    client_.expires_never();
    if (error && error != http::error::need_buffer) {
      Finish(499);
      co_return AfterExchange::kClose;
    }
    body.append(buffer.data(), buffer.size() - request_.get().body().size);
    if (body.size() > limit) {
      co_return co_await SendProblem(
          http::status::payload_too_large, "request-too-large", "Request body too large",
          StrCat("a buffered request body may hold at most ", limit, " bytes"));
    }
  }
  record_.request_bytes = body.size();
  CaptureRequestBody(body);
  if (admission_.validate_content != nullptr) {
    // validate-content: the body was read whole so it can be checked before forwarding.
    if (admission_.validate_content->max_size > 0 &&
        body.size() > admission_.validate_content->max_size &&
        admission_.validate_content->size_exceeded_action == "prevent") {
      co_return co_await SendProblem(
          http::status::payload_too_large, "content-too-large", "Request body too large",
          StrCat("the request body exceeds validate-content max-size of ",
                 admission_.validate_content->max_size, " bytes"));
    }
    if (admission_.content_type_missing &&
        admission_.validate_content->unspecified_content_type_action == "prevent") {
      co_return co_await SendProblem(http::status::unsupported_media_type, "content-type-missing",
                                     "Content type required",
                                     "validate-content requires a Content-Type for the body");
    }
  }
  co_return PhaseOutcome();
}

awaitable<std::pair<beast::error_code, bool>> Exchange::SendRequest(
    tcp::socket& upstream, http::request<http::buffer_body>& head, std::string& buffered_body) {
  http::request_serializer<http::buffer_body> serializer(head);
  bool consumed_body = false;
  if (!buffered_body.empty()) {
    head.body().data = buffered_body.data();
    head.body().size = buffered_body.size();
    head.body().more = false;
    auto [error, written] = co_await http::async_write(upstream, serializer, kNoThrow);
    co_return std::pair{error, false};
  }
  std::span<char> buffer = request_.is_done() ? std::span<char>() : BodyBuffer();
  std::optional<RoomToReadBody> room;
  if (!request_.is_done()) room.emplace(client_buffer_);
  for (;;) {
    if (!request_.is_done()) {
      request_.get().body().data = buffer.data();
      request_.get().body().size = buffer.size();
      client_.expires_after(context_.limits.idle_timeout);
      auto [read_error, read] =
          co_await http::async_read_some(client_, client_buffer_, request_, kNoThrow);
      client_.expires_never();
      if (read_error && read_error != http::error::need_buffer) {
        co_return std::pair{read_error, true};
      }
      const size_t piece = buffer.size() - request_.get().body().size;
      CaptureRequestBody(std::string_view(buffer.data(), piece));
      consumed_body = consumed_body || piece > 0;
      record_.request_bytes += piece;
      // No bytes must be passed as no buffer: an empty buffer would be written as the final
      // (zero-length) chunk.
      head.body().data = piece > 0 ? buffer.data() : nullptr;
      head.body().size = piece;
      head.body().more = !request_.is_done();
    } else {
      head.body().data = nullptr;
      head.body().size = 0;
      head.body().more = false;
    }
    auto [write_error, written] = co_await http::async_write(upstream, serializer, kNoThrow);
    if (write_error && write_error != http::error::need_buffer) {
      co_return std::pair{write_error, consumed_body};
    }
    if (serializer.is_done()) co_return std::pair{beast::error_code{}, consumed_body};
  }
}

awaitable<PhaseOutcome> Exchange::OpenUpstream(const Route& route) {
  auto& request = request_.get();
  const bool buffer_body = route.buffer_request_body && !request_.is_done();
  const size_t max_body = context_.limits.max_buffered_body_bytes;
  if (buffer_body && request_.content_length() && *request_.content_length() > max_body) {
    // Refused by its length, before it is read (and without a 100 Continue asking for it).
    const std::string detail =
        StrCat("the request body of ", *request_.content_length(), " bytes is larger than the ",
               max_body, " bytes a buffered request body may hold");
    co_return co_await SendProblem(http::status::payload_too_large, "request-too-large",
                                   "Request body too large", detail);
  }
  if (request[http::field::expect] == "100-continue") {
    // Answered here: the backend never sees Expect, so it cannot stall on it.
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    co_await asio::async_write(client_, asio::buffer(kContinue), kNoThrow);
  }

  http::request<http::buffer_body> head;
  head.method_string(request.method_string());
  head.target(RouteTable::BackendTarget(route, request.target()));
  head.version(11);
  CopyEndToEndHeaders(request, head);
  head.erase(http::field::expect);
  head.set(http::field::host, route.backend.authority);
  AddForwardedHeaders(request, record_.client_ip, head);
  // Event streams are relayed as they are produced: never compressed on the way.
  if (route.sse || AcceptsEventStream(request)) head.erase(http::field::accept_encoding);
  if (request_.chunked()) {
    head.chunked(true);
  } else if (request_.content_length()) {
    head.content_length(*request_.content_length());
  }
  std::string buffered_body;
  BufferReservation reservation(context_.buffer_budget);
  if (buffer_body) {
    if (PhaseOutcome read = co_await ReadWholeRequestBody(buffered_body, reservation); read.ended) {
      co_return read;
    }
    head.chunked(false);
    head.content_length(buffered_body.size());
  }
  // A buffered body can be sent again; a streamed one cannot.
  const bool request_has_body = !request_.is_done() && buffered_body.empty();

  // A pooled connection the backend closed meanwhile fails before any response byte; such a
  // request is retried once on a new connection if its body has not been consumed.
  for (int attempt = 0;; ++attempt) {
    auto [connect_error, lease] = co_await context_.pool.Acquire(
        route.backend, context_.limits.connect_timeout, /*fresh_only=*/attempt > 0);
    if (connect_error) {
      // Named locals: a conditional expression's temporary in a co_await operand is freed
      // twice by GCC 12.
      const bool timed_out = connect_error == beast::error::timeout;
      context_.metrics.CountUpstreamError(timed_out ? "connect_timeout" : "connect");
      const http::status status =
          timed_out ? http::status::gateway_timeout : http::status::bad_gateway;
      const std::string_view type = timed_out ? "backend-timeout" : "backend-unreachable";
      const std::string_view title = timed_out ? "Backend timeout" : "Backend unreachable";
      std::string detail = StrCat("cannot connect to the backend of api \"", route.api,
                                  "\": ", connect_error.message());
      co_return co_await SendProblem(status, type, title, std::move(detail));
    }
    upstream_ = std::move(lease.stream);
    if (!lease.reused) SetTcpKeepalive(upstream_->native_handle(), context_.limits);
    upstream_buffer_.clear();
    NewResponseParser();

    auto [send_error, consumed_body] = co_await SendRequest(*upstream_, head, buffered_body);
    beast::error_code error = send_error;
    if (!error) {
      SocketDeadline deadline(*upstream_, route.timeout);
      std::tie(error, std::ignore) =
          co_await http::async_read_header(*upstream_, upstream_buffer_, *response_, kNoThrow);
      // 1xx interim responses (other than 101) are not relayed; wait for the final one.
      while (!error && response_->get().result_int() / 100 == 1 &&
             response_->get().result() != http::status::switching_protocols) {
        NewResponseParser();
        std::tie(error, std::ignore) =
            co_await http::async_read_header(*upstream_, upstream_buffer_, *response_, kNoThrow);
      }
      if (deadline.expired()) error = beast::error::timeout;
    }
    if (!error) break;
    const bool stale_connection = lease.reused && !consumed_body && !request_has_body &&
                                  error != beast::error::timeout && attempt == 0;
    if (stale_connection) continue;
    const bool timed_out = error == beast::error::timeout;
    context_.metrics.CountUpstreamError(timed_out ? "response_timeout" : "response");
    if (consumed_body && !request_.is_done()) {
      if (send_error.category() == http::make_error_code(http::error::bad_chunk).category()) {
        // A malformed body (bad chunk, bad length): the client is still there to be told.
        co_return co_await SendProblem(http::status::bad_request, "bad-request-body",
                                       "Malformed request body", send_error.message());
      }
      // The client is gone: nobody to answer.
      Finish(499);
      co_return AfterExchange::kClose;
    }
    // Named locals, as above: this was the double free.
    const http::status status =
        timed_out ? http::status::gateway_timeout : http::status::bad_gateway;
    const std::string_view type = timed_out ? "backend-timeout" : "backend-failed";
    const std::string_view title = timed_out ? "Backend timeout" : "Backend failed";
    std::string detail;
    if (timed_out) {
      detail = StrCat("the backend of api \"", route.api, "\" sent no response within ",
                      route.timeout.count(), " s");
    } else {
      detail = StrCat("the backend of api \"", route.api,
                      "\" failed before its response head: ", error.message());
    }
    co_return co_await SendProblem(status, type, title, std::move(detail));
  }
  if (response_->get().result() == http::status::switching_protocols) {
    // No API accepts upgrades yet, and the request's Upgrade was not forwarded: a backend that
    // switches protocols anyway would have its next bytes parsed as HTTP ("101 smuggling").
    context_.metrics.CountUpstreamError("unexpected_upgrade");
    beast::error_code ignored;
    upstream_->close(ignored);
    std::string detail = StrCat("the backend of api \"", route.api,
                                "\" switched protocols (101), which was not asked for");
    co_return co_await SendProblem(http::status::bad_gateway, "backend-unexpected-upgrade",
                                   "Backend switched protocols", std::move(detail));
  }
  record_.time_to_first_byte = Since(start_);
  // Parsing the head may have grown the buffer; an open stream should not keep that.
  if (upstream_buffer_.size() == 0) upstream_buffer_.shrink_to_fit();
  co_return PhaseOutcome();
}

void Exchange::NewResponseParser() {
  response_.emplace();
  response_->body_limit(boost::none);
  response_->header_limit(static_cast<std::uint32_t>(context_.limits.max_response_header_bytes));
  if (is_head_) response_->skip(true);
}

}  // namespace apim::dataplane

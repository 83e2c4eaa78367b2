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

awaitable<PhaseOutcome> Exchange::ReadWholeRequestBody(std::string& body,
                                                       BufferReservation& reservation) {
  const size_t limit = context_.limits.max_buffered_body_bytes;
  // A known length is taken from the budget at once; a chunked body as it grows.
  if (!reservation.GrowTo(downstream_.request_content_length().value_or(0))) {
    co_return co_await RefuseForBudget();
  }
  std::span<char> buffer = BodyBuffer();
  while (!downstream_.request_body_done()) {
    if (!reservation.GrowTo(body.size() + buffer.size())) co_return co_await RefuseForBudget();
    const BodyRead read = co_await downstream_.ReadBody(buffer);
    if (read.error) {
      Finish(499);
      co_return AfterExchange::kClose;
    }
    body.append(buffer.data(), read.bytes);
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
    SocketStream& upstream, http::request<http::buffer_body>& head, std::string& buffered_body) {
  http::request_serializer<http::buffer_body> serializer(head);
  bool consumed_body = false;
  if (!buffered_body.empty()) {
    head.body().data = buffered_body.data();
    head.body().size = buffered_body.size();
    head.body().more = false;
    auto [error, written] = co_await http::async_write(upstream, serializer, kNoThrow);
    co_return std::pair{error, false};
  }
  std::span<char> buffer = downstream_.request_body_done() ? std::span<char>() : BodyBuffer();
  for (;;) {
    if (!downstream_.request_body_done()) {
      const BodyRead read = co_await downstream_.ReadBody(buffer);
      if (read.error) co_return std::pair{read.error, true};
      const size_t piece = read.bytes;
      CaptureRequestBody(std::string_view(buffer.data(), piece));
      consumed_body = consumed_body || piece > 0;
      record_.request_bytes += piece;
      // No bytes must be passed as no buffer: an empty buffer would be written as the final
      // (zero-length) chunk.
      head.body().data = piece > 0 ? buffer.data() : nullptr;
      head.body().size = piece;
      head.body().more = !downstream_.request_body_done();
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
  http::request_header<>& request = downstream_.request();
  const bool body_done = downstream_.request_body_done();
  const std::optional<uint64_t> content_length = downstream_.request_content_length();
  const bool buffer_body = route.buffer_request_body && !body_done;
  const size_t max_body = context_.limits.max_buffered_body_bytes;
  if (buffer_body && content_length && *content_length > max_body) {
    // Refused by its length, before it is read (and without a 100 Continue asking for it).
    const std::string detail =
        StrCat("the request body of ", *content_length, " bytes is larger than the ", max_body,
               " bytes a buffered request body may hold");
    co_return co_await SendProblem(http::status::payload_too_large, "request-too-large",
                                   "Request body too large", detail);
  }
  if (request[http::field::expect] == "100-continue") {
    // Answered here: the backend never sees Expect, so it cannot stall on it.
    co_await downstream_.AskForBody();
  }

  http::request<http::buffer_body> head;
  head.method_string(request.method_string());
  head.target(RouteTable::BackendTarget(route, request.target()));
  head.version(11);
  CopyEndToEndHeaders(request, head);
  head.erase(http::field::expect);
  head.set(http::field::host, route.backend.authority);
  AddForwardedHeaders(request, record_.client_ip, downstream_.secure(), head);
  // Event streams are relayed as they are produced: never compressed on the way.
  if (route.sse || AcceptsEventStream(request)) head.erase(http::field::accept_encoding);
  if (content_length) {
    head.content_length(*content_length);
  } else if (!body_done) {
    head.chunked(true);  // A body of unknown length.
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
  const bool request_has_body = !downstream_.request_body_done() && buffered_body.empty();

  // A pooled connection the backend closed meanwhile fails before any response byte; such a
  // request is retried once on a new connection if its body has not been consumed.
  for (int attempt = 0;; ++attempt) {
    auto [connect_error, lease] = co_await context_.pool.Acquire(
        route.backend, context_.limits.connect_timeout, /*fresh_only=*/attempt > 0);
    if (!lease.tls_failure.empty()) {
      ++context_.metrics.backend_tls_failed_handshakes;
      co_return co_await RefuseForTls(route, connect_error, lease.tls_failure);
    }
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
    if (lease.handshake == UpstreamPool::Handshake::kFull) {
      ++context_.metrics.backend_tls_full_handshakes;
    } else if (lease.handshake == UpstreamPool::Handshake::kResumed) {
      ++context_.metrics.backend_tls_resumed_handshakes;
    }
    upstream_ = std::move(lease.stream);
    if (!lease.reused) SetTcpKeepalive(upstream_->socket().native_handle(), context_.limits);
    upstream_buffer_.clear();
    NewResponseParser();

    auto [send_error, consumed_body] = co_await SendRequest(*upstream_, head, buffered_body);
    beast::error_code error = send_error;
    if (!error) {
      SocketDeadline deadline(upstream_->socket(), route.timeout);
      error = co_await upstream_->WaitReadable();
      if (!error) {
        // A head nearly always arrives in one read: read and parse it now; only what is missing
        // (or an error, or the end) is left to the asynchronous read.
        const auto room = upstream_buffer_.prepare(kHeadReadBytes);
        upstream_buffer_.commit(
            upstream_->TryRead(static_cast<char*>(room.data()), room.size()).bytes);
        error = ParseBuffered(*response_, upstream_buffer_);
      }
      if (!error && !response_->is_header_done()) {
        std::tie(error, std::ignore) =
            co_await http::async_read_header(*upstream_, upstream_buffer_, *response_, kNoThrow);
      }
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
    if (consumed_body && !downstream_.request_body_done()) {
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
      // A TLS alert (a client certificate required or refused, say) says more than the errno.
      const std::string& tls_error = upstream_->tls_error();
      detail = StrCat("the backend of api \"", route.api, "\" failed before its response head: ",
                      tls_error.empty() ? error.message() : tls_error);
    }
    co_return co_await SendProblem(status, type, title, std::move(detail));
  }
  if (response_->get().result() == http::status::switching_protocols) {
    // No API accepts upgrades yet, and the request's Upgrade was not forwarded: a backend that
    // switches protocols anyway would have its next bytes parsed as HTTP ("101 smuggling").
    context_.metrics.CountUpstreamError("unexpected_upgrade");
    beast::error_code ignored;
    upstream_->socket().close(ignored);
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

awaitable<AfterExchange> Exchange::RefuseForTls(const Route& route, beast::error_code error,
                                                const std::string& failure) {
  const bool timed_out = error == beast::error::timeout;
  context_.metrics.CountUpstreamError(timed_out ? "tls_handshake_timeout" : "tls_handshake");
  const http::status status = timed_out ? http::status::gateway_timeout : http::status::bad_gateway;
  std::string detail = StrCat("TLS with the backend of api \"", route.api, "\" (",
                              route.backend.host, ":", route.backend.port, ") failed: ", failure);
  co_return co_await SendProblem(status, "backend-tls-failed", "Backend TLS failed",
                                 std::move(detail));
}

void Exchange::NewResponseParser() {
  response_.emplace();
  response_->body_limit(boost::none);
  response_->header_limit(static_cast<std::uint32_t>(context_.limits.max_response_header_bytes));
  if (is_head_) response_->skip(true);
}

}  // namespace apim::dataplane

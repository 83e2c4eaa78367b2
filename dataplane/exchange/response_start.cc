#include <boost/asio/write.hpp>

#include "common/str_cat.h"
#include "dataplane/exchange/exchange.h"
#include "dataplane/exchange/http_forwarding.h"
#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using tcp = asio::ip::tcp;

void Exchange::StoreInCache(const Route& route, const http::response<http::empty_body>& head,
                            const std::string& body) {
  // Only complete, buffered 200 responses of ordinary APIs: never an event stream.
  if (admission_.cache_key.empty() || head.result() != http::status::ok) return;
  const policy::CacheStore* store = FindCacheStore(route.policy->outbound);
  if (store == nullptr || body.size() > route.cache.max_entry_bytes) return;
  CachedResponse cached;
  cached.status = 200;
  for (const auto& field : head) {
    if (field.name() == http::field::content_length || field.name() == http::field::connection) {
      continue;  // Set anew for each response served from the cache.
    }
    cached.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  cached.body = body;
  cached.stored = Clock::now();
  cached.expires =
      cached.stored + (store->duration.count() > 0
                           ? std::chrono::duration_cast<Clock::duration>(store->duration)
                           : std::chrono::duration_cast<Clock::duration>(route.cache.default_ttl));
  context_.cache.Store(admission_.cache_key, std::move(cached));
}

awaitable<Exchange::ResponseStart> Exchange::StartResponse(const Route& route,
                                                           const TierLimits& tier) {
  const auto& backend_response = response_->get();
  const unsigned status = backend_response.result_int();
  ResponseStart start;
  start.event_stream = IsEventStream(backend_response);
  if (start.event_stream && !tier.long_lived_connections) {
    // The backend streams although nothing asked for it: its connection is not reused.
    context_.metrics.CountUpstreamError("unexpected_event_stream");
    beast::error_code ignored;
    upstream_->socket().close(ignored);
    start.outcome = co_await SendProblem(
        http::status::bad_gateway, "unexpected-event-stream", "Unexpected event stream",
        StrCat("the backend of api \"", route.api,
               "\" answered with text/event-stream, which tier \"", tier.name,
               "\" cannot relay (no long-lived connections)"));
    co_return start;
  }
  if (route.fail_on_error_status_code && status >= 400) {
    context_.metrics.CountUpstreamError("error_status");
    start.outcome =
        co_await SendProblem(http::status::bad_gateway, "backend-error-status", "Backend error",
                             StrCat("the backend of api \"", route.api, "\" answered ", status,
                                    " and fail-on-error-status-code is set"));
    co_return start;
  }

  http::response<http::empty_body> head{backend_response.result(), 11};
  head.reason(backend_response.reason());
  CopyEndToEndHeaders(backend_response, head);
  ApplyOutboundHeaders(route.policy->outbound, head);
  ResponseBody body = ResponseBody::kUnknownLength;
  if (is_head_ || status == 204 || status == 304) {
    body = ResponseBody::kNone;
    if (response_->content_length()) head.content_length(*response_->content_length());
  } else if (!start.event_stream && response_->content_length()) {
    body = ResponseBody::kKnownLength;
    head.content_length(*response_->content_length());
  }
  start.relay = body != ResponseBody::kNone;

  // buffer-response (not for event streams): the body is read whole before anything is sent,
  // so a backend that fails mid-body yields a clean 502 instead of a truncated response.
  // It is held within the worker's buffer budget: a body that does not fit is relayed instead.
  if (route.buffer_response && !start.event_stream && body != ResponseBody::kNone) {
    const size_t max_body = context_.limits.max_buffered_body_bytes;
    if (response_->content_length() && *response_->content_length() > max_body) {
      start.outcome = co_await RefuseLargeResponse(route);
      co_return start;
    }
    std::string buffered;
    BufferReservation reservation(context_.buffer_budget);
    bool fits = reservation.GrowTo(response_->content_length().value_or(0));
    // Room to read the rest of the body, unless all of it came with the head (as a small one does).
    std::optional<RoomToReadBody> room;
    if (!response_->content_length() || *response_->content_length() > upstream_buffer_.size()) {
      room.emplace(upstream_buffer_);
    }
    while (fits && !response_->is_done()) {
      // Read straight into the body: all of it at once when its length is known.
      const size_t filled = buffered.size();
      size_t piece = kBodyBufferBytes;
      if (response_->content_length() && *response_->content_length() > filled) {
        piece = *response_->content_length() - filled;
      }
      if (!reservation.GrowTo(filled + piece)) {
        fits = false;
        break;
      }
      buffered.resize(filled + piece);
      response_->get().body().data = buffered.data() + filled;
      response_->get().body().size = piece;
      // What came with the head first; a small body is complete there.
      beast::error_code error = ParseBuffered(*response_, upstream_buffer_);
      if (!error && !response_->is_done() && upstream_buffer_.size() == 0) {
        // The tier's max response duration bounds the whole exchange, route.timeout each read.
        auto limit = std::chrono::duration_cast<Clock::duration>(route.timeout);
        if (tier.max_response_duration.count() > 0) {
          limit = std::min(limit, start_ + tier.max_response_duration - Clock::now());
        }
        SocketDeadline deadline(upstream_->socket(), std::max(limit, Clock::duration::zero()));
        std::tie(error, std::ignore) =
            co_await http::async_read_some(*upstream_, upstream_buffer_, *response_, kNoThrow);
        if (deadline.expired()) error = beast::error::timeout;
      }
      if (error && error != http::error::need_buffer) {
        context_.metrics.CountUpstreamError("response_body");
        std::string detail = StrCat("the backend of api \"", route.api,
                                    "\" failed while sending its body: ", error.message());
        start.outcome = co_await SendProblem(http::status::bad_gateway, "backend-failed",
                                             "Backend failed", std::move(detail));
        co_return start;
      }
      buffered.resize(buffered.size() - response_->get().body().size);
      if (buffered.size() > max_body) {
        start.outcome = co_await RefuseLargeResponse(route);
        co_return start;
      }
    }
    record_.response_bytes += buffered.size();
    CaptureResponseBody(buffered);
    if (!fits) {
      // What was read so far goes out with the head; the relay carries the rest.
      ++context_.metrics.buffer_budget_exhausted_responses;
      context_.buffer_budget.NoteRefusal();
      downstream_.SendHead(head, body);
      start.first_piece = std::move(buffered);
      co_return start;
    }
    head.content_length(buffered.size());
    StoreInCache(route, head, buffered);
    downstream_.SendHead(head, ResponseBody::kKnownLength);
    // Sent as far as the client takes it now; the rest goes when the exchange finishes.
    start.client_gone = !buffered.empty() && downstream_.SendBody(buffered) == Sent::kGone;
    start.relay = false;
    co_return start;
  }
  downstream_.SendHead(head, body);
  co_return start;
}

awaitable<AfterExchange> Exchange::RefuseLargeResponse(const Route& route) {
  context_.metrics.CountUpstreamError("response_too_large");
  std::string detail = StrCat("the response of api \"", route.api, "\" exceeds the ",
                              context_.limits.max_buffered_body_bytes,
                              " bytes buffer-response may hold; set buffer-response to false");
  co_return co_await SendProblem(http::status::bad_gateway, "response-too-large",
                                 "Response too large", std::move(detail));
}

}  // namespace apim::dataplane

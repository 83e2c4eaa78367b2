#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>

#include "common/str_cat.h"
#include "dataplane/exchange/exchange.h"

namespace apim::dataplane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;

awaitable<AfterExchange> Exchange::Run() {
  // Admission runs in a coroutine of its own that ends before the relay: a long stream keeps
  // none of its state (the decision, an answer's message) in this frame.
  if (PhaseOutcome admitted = co_await AdmitOrAnswer(); admitted.ended) co_return admitted.after;
  // Forwarding is in this same frame (not a coroutine of its own): an open stream keeps one
  // frame fewer. Each other phase is its own coroutine so that its frame is freed when it ends:
  // an open stream keeps only the relay's small state.
  const Route& route = *admission_.route;
  const TierLimits& tier = snapshot_->routes.tier();
  if (PhaseOutcome opened = co_await OpenUpstream(route); opened.ended) co_return opened.after;
  // The request is sent: its header fields are not needed for the rest of a long stream.
  downstream_.ReleaseRequestHead();
  ResponseStart start = co_await StartResponse(route, tier);
  if (start.outcome.ended) co_return start.outcome.after;

  // The backend's header fields are not needed for the rest of a long stream either.
  const unsigned status = response_->get().result_int();
  const bool backend_keep_alive = response_->get().keep_alive();
  response_->get().clear();
  response_->get().reason({});  // clear() keeps the reason phrase's allocation.
  // Nor the body buffer that carried the request body (16 KiB, e.g. a POST that opens a stream).
  std::vector<char>().swap(buffer_);

  RelayEnd end = start.client_gone ? RelayEnd::kClientGone : RelayEnd::kComplete;
  // Bytes past the response's end, or a body sent anyway after a HEAD (whose length the head
  // does not tell), would be read as the next response on a reused connection.
  bool backend_reusable = response_->is_done() && upstream_buffer_.size() == 0 && !is_head_;
  response_started_ = true;
  if (start.relay) {
    record_.stream = start.event_stream;
    std::optional<GaugeHold> stream_count;
    if (start.event_stream) stream_count.emplace(context_.metrics.active_streams);
    // A client that goes away is noticed at once, even while the backend is silent, and the
    // backend connection is closed.
    downstream_.CloseOnClientGone(upstream_->socket());
    StreamClock clock(upstream_->socket(), downstream_,
                      {.heartbeat_interval =
                           start.event_stream ? route.heartbeat_interval : std::chrono::seconds(0),
                       .idle_timeout = tier.idle_timeout,
                       .max_duration = tier.max_response_duration,
                       .tier = tier.name},
                      context_.open_relays);
    const auto already_read = upstream_buffer_.data();
    BodyRelay relay(
        *upstream_, downstream_, *response_, std::move(start.first_piece),
        std::string_view(static_cast<const char*>(already_read.data()), already_read.size()),
        start.event_stream, clock, context_.metrics);
    upstream_buffer_ = beast::flat_buffer();  // The relay holds what was in it.
    if (diagnostics_ != nullptr && !start.event_stream) {
      relay.CaptureBody(&record_.response_body, diagnostics_->response_body_bytes);
    }
    end = co_await relay.Run();
    record_.response_bytes += relay.body_bytes();
    record_.events += relay.events();
    backend_reusable = relay.ended_cleanly() && !is_head_;
    const ClientState client = downstream_.StopWatchingClient();
    if (client == ClientState::kGone) end = RelayEnd::kClientGone;
    if (client == ClientState::kOverran) {
      ++context_.metrics.client_overruns;
      record_.error = StrCat("the client sent more than ", context_.limits.max_request_header_bytes,
                             " bytes while the response was relayed");
      spdlog::info("ended {} {} of api \"{}\": {}", record_.method, record_.target, route.api,
                   record_.error);
      end = RelayEnd::kClientGone;
    }
    if (!clock.cut_reason().empty()) {
      ++context_.metrics.responses_cut;
      record_.error = clock.cut_reason();
      spdlog::info("cut {} {} of api \"{}\": {}", record_.method, record_.target, route.api,
                   clock.cut_reason());
      end = RelayEnd::kCut;
    }
  }
  if (end == RelayEnd::kComplete || end == RelayEnd::kDrained) {
    if (!co_await downstream_.Finish()) end = RelayEnd::kClientGone;
  } else {
    // The client must see a cut, not a clean end (an event stream reconnects).
    downstream_.Abort();
  }

  switch (end) {
    case RelayEnd::kComplete:
      if (backend_keep_alive && backend_reusable) {
        context_.pool.Release(route.backend, std::move(upstream_));
      }
      Finish(status);
      co_return downstream_.after();
    case RelayEnd::kBackendFailed:
      // No chunked terminator: the client sees a cut stream (EventSource reconnects).
      context_.metrics.CountUpstreamError("response_body");
      record_.error = "backend closed the connection mid-response";
      Finish(status);
      co_return AfterExchange::kClose;
    case RelayEnd::kClientGone:
      if (record_.error.empty()) record_.error = "client went away";
      Finish(status);
      co_return AfterExchange::kClose;
    case RelayEnd::kCut:
      // Cut without a chunked terminator; the reason is in the access log.
      Finish(status);
      co_return AfterExchange::kClose;
    case RelayEnd::kDrained:
      record_.error = "worker draining: stream ended at an event boundary";
      Finish(status);
      co_return AfterExchange::kClose;
  }
  co_return AfterExchange::kClose;
}

}  // namespace apim::dataplane

#include "dataplane/proxy_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <random>
#include <span>
#include <vector>

#include "common/sha256.h"
#include "common/str_cat.h"
#include "dataplane/admin/access_log.h"
#include "dataplane/exchange/admission.h"
#include "dataplane/exchange/http_forwarding.h"
#include "dataplane/exchange/problem.h"
#include "dataplane/exchange/request_target.h"
#include "dataplane/net/socket_deadline.h"
#include "dataplane/relay/body_relay.h"
#include "dataplane/relay/sse/event_boundary_tracker.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// Request bodies and buffered responses move through one buffer of this size.
constexpr size_t kBodyBufferBytes = 16 * 1024;

using Clock = std::chrono::steady_clock;

// Beast reads a body through the connection's read buffer, each read at most what that buffer
// has room for: 512 bytes once it has been given back after a head, so a megabyte took two
// thousand reads. While a body is read the buffer has a body buffer's worth of room; it is given
// back afterwards, so that an open stream which follows does not keep it.
class RoomToReadBody {
 public:
  explicit RoomToReadBody(beast::flat_buffer& buffer) : buffer_(buffer) {
    buffer_.reserve(kBodyBufferBytes);
  }
  ~RoomToReadBody() {
    if (buffer_.size() == 0) buffer_.shrink_to_fit();
  }
  RoomToReadBody(const RoomToReadBody&) = delete;
  RoomToReadBody& operator=(const RoomToReadBody&) = delete;

 private:
  beast::flat_buffer& buffer_;
};

std::chrono::microseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

// While a response is relayed, watches the client socket: if the client closes or resets its
// connection, the backend connection is closed at once, which ends the relay's wait for the
// backend. What the client sends meanwhile (a pipelined request) is kept for after the response,
// up to `limit` bytes; a client that sends more has the relay ended, so that no stream lives on
// unwatched. A plain handler rather than a second coroutine keeps an open stream small.
class ClientCloseWatch {
 public:
  ClientCloseWatch(tcp::socket& client, tcp::socket& upstream, beast::flat_buffer& pipelined,
                   size_t limit)
      : client_(client), state_(std::make_shared<State>(client, upstream, pipelined, limit)) {
    Watch(state_);
  }
  // Stops watching; the handler may still run later, and then does nothing.
  ~ClientCloseWatch() {
    state_->active = false;
    beast::error_code ignored;
    client_.cancel(ignored);
  }
  bool client_gone() const { return state_->client_gone; }
  bool overrun() const { return state_->overrun; }

 private:
  struct State {
    State(tcp::socket& client, tcp::socket& upstream, beast::flat_buffer& pipelined, size_t limit)
        : client(client), upstream(upstream), pipelined(pipelined), limit(limit) {}
    tcp::socket& client;
    tcp::socket& upstream;
    beast::flat_buffer& pipelined;
    const size_t limit;
    bool active = true;
    bool client_gone = false;
    bool overrun = false;
  };

  static void Watch(const std::shared_ptr<State>& state) {
    state->client.async_wait(tcp::socket::wait_read,
                             [state](const beast::error_code& error) { OnReadable(state, error); });
  }

  static void OnReadable(const std::shared_ptr<State>& state, const beast::error_code& error) {
    if (error || !state->active) return;
    const size_t room = state->limit - std::min(state->limit, state->pipelined.size());
    // Read into the stack so that the kept bytes cost only their size; one byte more than the
    // room tells a client that sends too much from one that fills it.
    char bytes[4096];
    const ssize_t n = ::recv(state->client.native_handle(), bytes, std::min(room + 1, sizeof bytes),
                             MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Watch(state);
    if (n > 0 && static_cast<size_t>(n) <= room) {
      const size_t got = static_cast<size_t>(n);
      asio::buffer_copy(state->pipelined.prepare(got), asio::buffer(bytes, got));
      state->pipelined.commit(got);
      return Watch(state);
    }
    state->overrun = n > 0;
    state->client_gone = n <= 0;
    beast::error_code ignored;
    state->upstream.close(ignored);
  }

  tcp::socket& client_;
  std::shared_ptr<State> state_;
};

// Counts one in a gauge (open connections, open streams) for as long as it lives, however the
// scope is left.
class GaugeHold {
 public:
  explicit GaugeHold(std::atomic<int64_t>& gauge) : gauge_(gauge) { ++gauge_; }
  ~GaugeHold() { --gauge_; }
  GaugeHold(const GaugeHold&) = delete;
  GaugeHold& operator=(const GaugeHold&) = delete;

 private:
  std::atomic<int64_t>& gauge_;
};

// A response head as the bytes that go on the wire.
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

// One request and its response through the gateway. Lives in the session's coroutine frame for
// the duration of the exchange.
class Exchange {
 public:
  Exchange(SessionContext& context, beast::tcp_stream& client, beast::flat_buffer& client_buffer,
           http::request_parser<http::buffer_body>& request, std::string client_ip)
      : context_(context), client_(client), client_buffer_(client_buffer), request_(request) {
    record_.client_ip = std::move(client_ip);
    record_.method = std::string(request.get().method_string());
    record_.target = RedactedTarget(request.get().target());
    version_ = request.get().version();
    keep_alive_ = request.get().keep_alive();
    is_head_ = request.get().method() == http::verb::head;
  }

  // Serves the exchange; true when the client connection can carry another request.
  awaitable<bool> Run();
  // Ends an exchange that Run left by an exception: answers 500 if nothing was sent yet, and
  // logs and counts it like any other.
  awaitable<void> Fail(std::string reason);

 private:
  // What StartResponse settled about the response before its body is relayed.
  struct ResponseStart {
    std::optional<bool> finished;  // Set when the exchange already ended (keep-alive or not).
    Framing framing = Framing::kNone;
    bool event_stream = false;
    bool keep_alive = false;
    std::string buffered;                          // The whole body, when buffer-response applied.
    std::optional<BufferReservation> reservation;  // What `buffered` holds of the budget.
    std::string head;  // The head, serialized, when the relay is to send it.
  };

  // Writes an answer the gateway makes (a problem, a policy's, a cached response): the one
  // place answers are written.
  awaitable<bool> Send(http::response<http::string_body> response);
  awaitable<bool> Forward(const Route& route, const TierLimits& tier);
  // Connects (or reuses a connection), sends the request and reads the response head. Returns
  // nothing on success; otherwise the problem was answered and it says whether to keep alive.
  awaitable<std::optional<bool>> OpenUpstream(const Route& route);
  void NewResponseParser();
  void StoreInCache(const Route& route, const http::response<http::empty_body>& head,
                    const std::string& body);
  // Decides the framing towards the client, buffers the body if buffer-response applies, and
  // writes the response head (or, for a relayed body, leaves it to the relay).
  awaitable<ResponseStart> StartResponse(const Route& route, const TierLimits& tier);
  awaitable<bool> SendProblem(http::status status, std::string_view type, std::string_view title,
                              std::string detail);
  // Writes the request head, then the body: `buffered_body` when buffer-request-body applied,
  // else streamed from the client piece by piece.
  awaitable<std::pair<beast::error_code, bool>> SendRequest(tcp::socket& upstream,
                                                            http::request<http::buffer_body>& head,
                                                            std::string& buffered_body);
  // buffer-request-body: reads the whole request body, holding its size in `reservation`. Nothing
  // when it was read; otherwise it failed, was too large or did not fit in the buffer budget,
  // and the exchange was answered (keep-alive or not).
  awaitable<std::optional<bool>> ReadWholeRequestBody(std::string& body,
                                                      BufferReservation& reservation);
  // 503: the worker's buffer budget has no room for a body that must be buffered.
  awaitable<bool> RefuseForBudget();
  // 502: the response is larger than buffer-response may hold.
  awaitable<bool> RefuseLargeResponse(const Route& route);
  // Writes a body that buffer-response read whole.
  awaitable<bool> WriteBuffered(const std::string& body);
  void Finish(unsigned status);
  // The first bytes of the request body, where the diagnostic setting asks for them.
  void CaptureRequestBody(std::string_view bytes);

  SessionContext& context_;
  beast::tcp_stream& client_;
  beast::flat_buffer& client_buffer_;
  http::request_parser<http::buffer_body>& request_;
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
  unsigned version_ = 11;  // Of the request, kept once its fields are freed.
  bool keep_alive_ = false;
  bool is_head_ = false;
  std::shared_ptr<const RuntimeSnapshot> snapshot_;  // Held for the whole exchange.
  Admission admission_;                              // Points into snapshot_.
  const DiagnosticConfig* diagnostics_ = nullptr;
  std::unique_ptr<tcp::socket> upstream_;
  beast::flat_buffer upstream_buffer_;
  std::optional<http::response_parser<http::buffer_body>> response_;
};

awaitable<bool> Exchange::Run() {
  snapshot_ = context_.snapshots.Current();
  AdmissionServices services{context_.rate_limiter, context_.subscription_streams, context_.cache,
                             context_.metrics.active_streams, context_.metrics.streams_refused};
  AdmissionDecision decision =
      Admit({request_.get(), !request_.is_done(), record_.client_ip, &record_.headers},
            snapshot_.get(), services, Clock::now());
  if (Answer* answer = std::get_if<Answer>(&decision)) {
    record_.api = answer->api;
    record_.error = std::move(answer->error);
    diagnostics_ = answer->diagnostics;
    co_return co_await Send(std::move(answer->response));
  }
  admission_ = std::get<Admission>(std::move(decision));
  record_.api = admission_.route->api;
  diagnostics_ = &admission_.route->diagnostics;
  co_return co_await Forward(*admission_.route, snapshot_->routes.tier());
}

awaitable<bool> Exchange::Send(http::response<http::string_body> response) {
  if (response.result_int() < 200) {
    // A policy's status (check-header, return-response) can only be final here.
    const std::string detail = StrCat("a policy answers with status ", response.result_int(),
                                      ", which cannot end a request");
    record_.error = detail;
    response = Problem(http::status::internal_server_error, "policy-status-invalid",
                       "Invalid policy status", detail, version_);
  }
  const bool keep_alive = keep_alive_ && request_.is_done();
  response.keep_alive(keep_alive);
  record_.response_bytes = response.body().size();
  const unsigned status = response.result_int();
  client_.expires_after(context_.limits.idle_timeout);
  response_started_ = true;
  auto [error, written] = co_await http::async_write(client_, response, kNoThrow);
  client_.expires_never();
  Finish(status);
  co_return keep_alive && !error;
}

awaitable<void> Exchange::Fail(std::string reason) {
  ++context_.metrics.session_failures;
  spdlog::error("{} {}: unexpected error: {}", record_.method, record_.target, reason);
  record_.error = StrCat("unexpected error: ", reason);
  if (!response_started_) {
    auto problem = Problem(http::status::internal_server_error, "internal-error", "Internal error",
                           "the gateway could not serve this request; its log says why", version_);
    keep_alive_ = false;
    co_await Send(std::move(problem));
  } else if (!finished_) {
    Finish(500);
  }
}

awaitable<bool> Exchange::SendProblem(http::status status, std::string_view type,
                                      std::string_view title, std::string detail) {
  auto response = Problem(status, type, title, detail, version_);
  record_.error = std::move(detail);
  // An unread request body would be taken for the next request: Answer closes then.
  co_return co_await Send(std::move(response));
}

void Exchange::Finish(unsigned status) {
  finished_ = true;
  record_.status = status;
  record_.duration = Since(start_);
  context_.metrics.CountRequest(record_.api, status);
  context_.metrics.bytes_to_clients += record_.response_bytes;
  if (diagnostics_ != nullptr && diagnostics_->configured) {
    // The API's diagnostic setting decides what is logged.
    if (diagnostics_->verbosity == v1::VERBOSITY_ERROR && status < 400) return;
    if (diagnostics_->sampling_percentage < 100) {
      thread_local std::minstd_rand random(std::random_device{}());
      if (random() % 100 >= diagnostics_->sampling_percentage) return;
    }
    record_.log_client_ip = diagnostics_->log_client_ip;
    record_.capture_bodies =
        diagnostics_->request_body_bytes > 0 || diagnostics_->response_body_bytes > 0;
  }
  WriteAccessLog(record_);
}

awaitable<bool> Exchange::RefuseForBudget() {
  ++context_.metrics.buffer_budget_exhausted_requests;
  context_.buffer_budget.NoteRefusal();
  auto problem =
      Problem(http::status::service_unavailable, "buffer-budget-exhausted", "Gateway busy",
              "the gateway holds as many buffered bodies as it may; retry later", version_);
  problem.set(http::field::retry_after, "1");
  record_.error = "buffer budget exhausted";
  co_return co_await Send(std::move(problem));
}

void Exchange::CaptureRequestBody(std::string_view bytes) {
  if (diagnostics_ == nullptr || record_.request_body.size() >= diagnostics_->request_body_bytes) {
    return;
  }
  record_.request_body.append(
      bytes.substr(0, diagnostics_->request_body_bytes - record_.request_body.size()));
}

// Writes the request head, then streams the client's body (if any) piece by piece. Returns the
// error and whether any body byte was consumed from the client (then the request cannot be
// retried on another connection).
awaitable<std::optional<bool>> Exchange::ReadWholeRequestBody(std::string& body,
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
      co_return false;
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
  co_return std::nullopt;
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

awaitable<bool> Exchange::Forward(const Route& route, const TierLimits& tier) {
  // Each phase is its own coroutine so that its frame is freed when it ends: an open stream
  // keeps only the relay's small state.
  if (std::optional<bool> answered = co_await OpenUpstream(route)) co_return *answered;
  // The request is sent: its header fields are not needed for the rest of a long stream.
  request_.get().clear();
  ResponseStart start = co_await StartResponse(route, tier);
  if (start.finished) co_return *start.finished;

  // The backend's header fields are not needed for the rest of a long stream either.
  const unsigned status = response_->get().result_int();
  const bool backend_keep_alive = response_->get().keep_alive();
  response_->get().clear();

  RelayEnd end = RelayEnd::kComplete;
  // Bytes past the response's end, or a body sent anyway after a HEAD (whose length the head
  // does not tell), would be read as the next response on a reused connection.
  bool backend_reusable = response_->is_done() && upstream_buffer_.size() == 0 && !is_head_;
  response_started_ = true;
  if (!start.buffered.empty()) {
    const bool written = co_await WriteBuffered(start.buffered);
    end = written ? RelayEnd::kComplete : RelayEnd::kClientGone;
  } else if (start.framing != Framing::kNone) {
    record_.stream = start.event_stream;
    {
      std::optional<GaugeHold> stream_count;
      if (start.event_stream) stream_count.emplace(context_.metrics.active_streams);
      // A client that goes away is noticed at once, even while the backend is silent, and the
      // backend connection is closed.
      ClientCloseWatch watch(client_.socket(), *upstream_, client_buffer_,
                             context_.limits.max_request_header_bytes);
      StreamClock clock(*upstream_, client_.socket(),
                        {.heartbeat_interval = start.event_stream ? route.heartbeat_interval
                                                                  : std::chrono::seconds(0),
                         .idle_timeout = tier.idle_timeout,
                         .max_duration = tier.max_response_duration,
                         .tier = tier.name},
                        context_.open_relays);
      const auto already_read = upstream_buffer_.data();
      BodyRelay relay(
          *upstream_, client_.socket(), *response_, std::move(start.head),
          std::string_view(static_cast<const char*>(already_read.data()), already_read.size()),
          start.framing, start.event_stream, clock, context_.metrics);
      upstream_buffer_ = beast::flat_buffer();  // The relay holds what was in it.
      if (diagnostics_ != nullptr && !start.event_stream) {
        relay.CaptureBody(&record_.response_body, diagnostics_->response_body_bytes);
      }
      end = co_await relay.Run();
      record_.response_bytes += relay.body_bytes();
      record_.events += relay.events();
      backend_reusable = relay.ended_cleanly() && !is_head_;
      if (watch.client_gone()) end = RelayEnd::kClientGone;
      if (watch.overrun()) {
        ++context_.metrics.client_overruns;
        record_.error =
            StrCat("the client sent more than ", context_.limits.max_request_header_bytes,
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
  }
  if ((end == RelayEnd::kComplete || end == RelayEnd::kDrained) &&
      start.framing == Framing::kChunked) {
    auto [error, n] = co_await asio::async_write(client_, http::make_chunk_last(), kNoThrow);
    if (error) end = RelayEnd::kClientGone;
  }

  switch (end) {
    case RelayEnd::kComplete:
      if (backend_keep_alive && backend_reusable) {
        context_.pool.Release(route.backend, std::move(upstream_));
      }
      Finish(status);
      co_return start.keep_alive;
    case RelayEnd::kBackendFailed:
      // No chunked terminator: the client sees a cut stream (EventSource reconnects).
      context_.metrics.CountUpstreamError("response_body");
      record_.error = "backend closed the connection mid-response";
      Finish(status);
      co_return false;
    case RelayEnd::kClientGone:
      if (record_.error.empty()) record_.error = "client went away";
      Finish(status);
      co_return false;
    case RelayEnd::kCut:
      // Cut without a chunked terminator; the reason is in the access log.
      Finish(status);
      co_return false;
    case RelayEnd::kDrained:
      record_.error = "worker draining: stream ended at an event boundary";
      Finish(status);
      co_return false;
  }
  co_return false;
}

awaitable<std::optional<bool>> Exchange::OpenUpstream(const Route& route) {
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
    if (std::optional<bool> answered = co_await ReadWholeRequestBody(buffered_body, reservation)) {
      co_return *answered;
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
      co_return false;
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
  co_return std::nullopt;
}

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

void Exchange::NewResponseParser() {
  response_.emplace();
  response_->body_limit(boost::none);
  response_->header_limit(static_cast<std::uint32_t>(context_.limits.max_response_header_bytes));
  if (is_head_) response_->skip(true);
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
    upstream_->close(ignored);
    start.finished = co_await SendProblem(
        http::status::bad_gateway, "unexpected-event-stream", "Unexpected event stream",
        StrCat("the backend of api \"", route.api,
               "\" answered with text/event-stream, which tier \"", tier.name,
               "\" cannot relay (no long-lived connections)"));
    co_return start;
  }
  if (route.fail_on_error_status_code && status >= 400) {
    context_.metrics.CountUpstreamError("error_status");
    start.finished =
        co_await SendProblem(http::status::bad_gateway, "backend-error-status", "Backend error",
                             StrCat("the backend of api \"", route.api, "\" answered ", status,
                                    " and fail-on-error-status-code is set"));
    co_return start;
  }

  http::response<http::empty_body> head{backend_response.result(), version_};
  head.reason(backend_response.reason());
  CopyEndToEndHeaders(backend_response, head);
  ApplyOutboundHeaders(route.policy->outbound, head);
  if (is_head_ || status == 204 || status == 304) {
    start.framing = Framing::kNone;
    if (response_->content_length()) head.content_length(*response_->content_length());
  } else if (!start.event_stream && response_->content_length()) {
    start.framing = Framing::kContentLength;
    head.content_length(*response_->content_length());
  } else if (version_ >= 11) {
    start.framing = Framing::kChunked;
    head.chunked(true);
  } else {
    start.framing = Framing::kUntilClose;
  }
  start.keep_alive = keep_alive_ && start.framing != Framing::kUntilClose;
  head.keep_alive(start.keep_alive);

  // buffer-response (not for event streams): the body is read whole before anything is sent,
  // so a backend that fails mid-body yields a clean 502 instead of a truncated response.
  // It is held within the worker's buffer budget: a body that does not fit is relayed instead.
  if (route.buffer_response && !start.event_stream && start.framing != Framing::kNone) {
    const size_t max_body = context_.limits.max_buffered_body_bytes;
    if (response_->content_length() && *response_->content_length() > max_body) {
      start.finished = co_await RefuseLargeResponse(route);
      co_return start;
    }
    BufferReservation reservation(context_.buffer_budget);
    bool fits = reservation.GrowTo(response_->content_length().value_or(0));
    std::span<char> buffer = BodyBuffer();
    RoomToReadBody room(upstream_buffer_);
    while (fits && !response_->is_done()) {
      if (!reservation.GrowTo(start.buffered.size() + buffer.size())) {
        fits = false;
        break;
      }
      response_->get().body().data = buffer.data();
      response_->get().body().size = buffer.size();
      // The tier's max response duration bounds the whole exchange, route.timeout each read.
      auto limit = std::chrono::duration_cast<Clock::duration>(route.timeout);
      if (tier.max_response_duration.count() > 0) {
        limit = std::min(limit, start_ + tier.max_response_duration - Clock::now());
      }
      SocketDeadline deadline(*upstream_, std::max(limit, Clock::duration::zero()));
      auto [error, read] =
          co_await http::async_read_some(*upstream_, upstream_buffer_, *response_, kNoThrow);
      if (deadline.expired()) error = beast::error::timeout;
      if (error && error != http::error::need_buffer) {
        context_.metrics.CountUpstreamError("response_body");
        std::string detail = StrCat("the backend of api \"", route.api,
                                    "\" failed while sending its body: ", error.message());
        start.finished = co_await SendProblem(http::status::bad_gateway, "backend-failed",
                                              "Backend failed", std::move(detail));
        co_return start;
      }
      start.buffered.append(buffer.data(), buffer.size() - response_->get().body().size);
      if (start.buffered.size() > max_body) {
        start.finished = co_await RefuseLargeResponse(route);
        co_return start;
      }
    }
    if (!fits) {
      // What was read so far goes out with the head; the relay carries the rest.
      ++context_.metrics.buffer_budget_exhausted_responses;
      context_.buffer_budget.NoteRefusal();
      start.head = SerializedHead(head);
      if (start.framing == Framing::kChunked && !start.buffered.empty()) {
        char size_line[kChunkSizeLineBytes];
        StrAppendTo(start.head, ChunkSizeLine(start.buffered.size(), size_line), start.buffered,
                    "\r\n");
      } else {
        start.head.append(start.buffered);
      }
      record_.response_bytes += start.buffered.size();
      if (diagnostics_ != nullptr) {
        record_.response_body = start.buffered.substr(0, diagnostics_->response_body_bytes);
      }
      std::string().swap(start.buffered);
      co_return start;
    }
    start.reservation.emplace(std::move(reservation));
    start.framing = Framing::kContentLength;
    head.chunked(false);
    head.content_length(start.buffered.size());
    StoreInCache(route, head, start.buffered);
  }

  if (start.buffered.empty() && start.framing != Framing::kNone) {
    // A relayed body: the relay sends the head with the first piece of the body if that has
    // come already (one write, one wake-up of the client), and alone otherwise.
    start.head = SerializedHead(head);
    co_return start;
  }
  http::response_serializer<http::empty_body> serializer(head);
  client_.expires_after(context_.limits.idle_timeout);
  auto [error, written] = co_await http::async_write_header(client_, serializer, kNoThrow);
  client_.expires_never();
  if (error) {
    Finish(499);
    start.finished = false;
  }
  co_return start;
}

awaitable<bool> Exchange::RefuseLargeResponse(const Route& route) {
  context_.metrics.CountUpstreamError("response_too_large");
  std::string detail = StrCat("the response of api \"", route.api, "\" exceeds the ",
                              context_.limits.max_buffered_body_bytes,
                              " bytes buffer-response may hold; set buffer-response to false");
  co_return co_await SendProblem(http::status::bad_gateway, "response-too-large",
                                 "Response too large", std::move(detail));
}

awaitable<bool> Exchange::WriteBuffered(const std::string& body) {
  client_.expires_after(context_.limits.idle_timeout);
  auto [error, written] = co_await asio::async_write(client_, asio::buffer(body), kNoThrow);
  client_.expires_never();
  if (!error) {
    record_.response_bytes += body.size();
    if (diagnostics_ != nullptr) {
      record_.response_body = body.substr(0, diagnostics_->response_body_bytes);
    }
  }
  co_return !error;
}

// Writes a problem for a request that could not even be parsed, then the connection closes.
awaitable<void> RejectUnparsable(beast::tcp_stream& client, SessionContext& context,
                                 http::status status, std::string_view type, std::string_view title,
                                 std::string detail, std::string client_ip) {
  auto response = Problem(status, type, title, detail);
  response.keep_alive(false);
  client.expires_after(std::chrono::seconds(5));
  co_await http::async_write(client, response, kNoThrow);
  AccessRecord record;
  record.client_ip = std::move(client_ip);
  record.status = static_cast<unsigned>(status);
  record.error = std::move(detail);
  context.metrics.CountRequest("", record.status);
  WriteAccessLog(record);
}

// Reads the next request's head into `parser`. On failure it answers what can be answered (408,
// 431, 400) and returns false: the connection then closes. Its own coroutine, so the temporaries
// of reading and rejecting are not kept in the frame of a long stream.
awaitable<bool> ReadRequestHead(beast::tcp_stream& client, beast::flat_buffer& buffer,
                                http::request_parser<http::buffer_body>& parser,
                                SessionContext& context, const std::string& client_ip) {
  // Waiting for a request may take up to the idle timeout; once it starts, its headers must be
  // complete within the header timeout.
  if (buffer.size() == 0) {
    // The tier's idle timeout, once a configuration is loaded.
    std::shared_ptr<const RuntimeSnapshot> snapshot = context.snapshots.Current();
    client.expires_after(snapshot ? std::chrono::duration_cast<std::chrono::seconds>(
                                        snapshot->routes.tier().idle_timeout)
                                  : context.limits.idle_timeout);
    auto [error, n] = co_await client.async_read_some(buffer.prepare(2048), kNoThrow);
    if (error) co_return false;
    buffer.commit(n);
  }
  parser.header_limit(static_cast<std::uint32_t>(context.limits.max_request_header_bytes));
  parser.body_limit(boost::none);
  // Not the stream's own expiry: that would close the socket before the 408 could be written.
  client.expires_never();
  beast::error_code error;
  {
    SocketDeadline deadline(client.socket(), context.limits.request_header_timeout);
    std::tie(error, std::ignore) =
        co_await http::async_read_header(client, buffer, parser, kNoThrow);
    if (deadline.expired()) error = beast::error::timeout;
  }
  if (!error) {
    // Framing and routing that two parties could read differently are refused (RFC 9112 6.3,
    // 3.2): a Transfer-Encoding whose last coding is not chunked (Beast would read no body and
    // the body would be taken for a next request), and a missing or repeated Host.
    const auto& head = parser.get();
    std::string_view problem;
    if (head.count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      problem = "Transfer-Encoding must end with chunked";
    } else if (parser.chunked() &&
               !beast::iequals(head[http::field::transfer_encoding], "chunked")) {
      // A coding before chunked (gzip, identity) would be dropped on the way: refused instead.
      problem = "Transfer-Encoding other than chunked alone is not accepted";
    } else if (head.count(http::field::host) > 1) {
      problem = "more than one Host header";
    } else if (head.version() >= 11 && head.count(http::field::host) == 0) {
      problem = "HTTP/1.1 requests need a Host header";
    }
    if (problem.empty()) co_return true;
    co_await RejectUnparsable(client, context, http::status::bad_request, "bad-request",
                              "Malformed request", std::string(problem), client_ip);
    co_return false;
  }
  if (error == http::error::header_limit) {
    co_await RejectUnparsable(
        client, context, http::status::request_header_fields_too_large, "header-too-large",
        "Request headers too large",
        StrCat("request headers exceed ", context.limits.max_request_header_bytes, " bytes"),
        client_ip);
  } else if (error == beast::error::timeout) {
    co_await RejectUnparsable(client, context, http::status::request_timeout, "header-timeout",
                              "Request timeout",
                              StrCat("request headers were not complete within ",
                                     context.limits.request_header_timeout.count(), " s"),
                              client_ip);
  } else if (error != http::error::end_of_stream && error != asio::error::eof &&
             error != asio::error::connection_reset) {
    co_await RejectUnparsable(client, context, http::status::bad_request, "bad-request",
                              "Malformed request", error.message(), client_ip);
  }
  co_return false;
}

}  // namespace

beast::error_code SetTcpKeepalive(int descriptor, const ProxyLimits& limits) {
  const int on = 1;
  const int idle = static_cast<int>(limits.tcp_keepalive_idle.count());
  const int interval = static_cast<int>(limits.tcp_keepalive_interval.count());
  const int count = limits.tcp_keepalive_count;
  if (::setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
      ::setsockopt(descriptor, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
      ::setsockopt(descriptor, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
      ::setsockopt(descriptor, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0) {
    return beast::error_code(errno, boost::system::system_category());
  }
  return {};
}

awaitable<void> ServeConnection(tcp::socket socket, tcp::endpoint peer, SessionContext& context) {
  const std::string client_ip = peer.address().to_string();
  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer buffer;
  GaugeHold connection_count(context.metrics.active_connections);
  // Every exchange ends through Run, or through Fail when something threw (a bug, or input no
  // check foresaw): either way the client is answered if it can be, and the exchange is logged
  // and counted. (A catch handler cannot co_await, hence the message carried out of it.)
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    bool read = false;
    try {
      read = co_await ReadRequestHead(client, buffer, parser, context, client_ip);
    } catch (const std::exception& error) {
      ++context.metrics.session_failures;
      spdlog::error("reading a request from {}: unexpected error: {}", client_ip, error.what());
    }
    if (!read) break;
    // Memory held across a long stream is what limits a worker: give back what parsing took.
    if (buffer.size() == 0) buffer.shrink_to_fit();
    Exchange exchange(context, client, buffer, parser, client_ip);
    bool keep_alive = false;
    std::optional<std::string> failure;
    try {
      keep_alive = co_await exchange.Run();
    } catch (const std::exception& error) {
      failure = error.what();
    }
    if (failure) {
      co_await exchange.Fail(std::move(*failure));
      break;
    }
    if (!keep_alive || context.draining.load()) break;
  }
  beast::error_code ignored;
  client.socket().shutdown(tcp::socket::shutdown_both, ignored);
  client.close();
}

}  // namespace apim::dataplane

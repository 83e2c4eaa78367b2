#pragma once
// Relays a response body from the backend to the client piece by piece, the moment each piece
// arrives, and holds no buffer while it waits. An open event stream spends nearly all its life
// waiting, so its memory is what limits how many streams a worker can hold: the relay waits for
// the backend socket to become readable, then reads and decodes through a buffer that belongs to
// the thread and is free again before the relay waits, and writes each piece to the downstream,
// which frames it. Only what the client does not take at once is copied aside, by the downstream
// (and nothing more is read from the backend until it has taken it, so backpressure reaches the
// backend).
//
// Every event passes through here, so the relay is a plain handler-driven state machine: per
// piece one wait, one read and one write, with no coroutine frames made and resumed.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/admin/metrics.h"
#include "dataplane/exchange/downstream.h"
#include "dataplane/net/socket_stream.h"
#include "dataplane/relay/sse/event_boundary_tracker.h"
#include "dataplane/relay/stream_clock.h"

namespace apim::dataplane {

// How a relay ended. kCut: the stream clock cut it (max duration, idle). kDrained: the worker is
// shutting down and the stream was ended cleanly at an event boundary, so the client reconnects
// elsewhere.
enum class RelayEnd { kComplete, kBackendFailed, kClientGone, kCut, kDrained };

class BodyRelay {
 public:
  using ResponseParser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

  // `response` has parsed the head; `already_read` are the bytes read past it with the head.
  // The downstream holds the response head: it goes with the first piece of the body if one can
  // be read at once, and alone otherwise (before the relay first waits or ends). `first_piece`
  // is body the exchange read already (a buffer-response that did not fit), sent first.
  // For an event stream, heartbeats are written between events when the clock asks, and a drain
  // ends the stream at an event boundary.
  BodyRelay(SocketStream& upstream, Downstream& downstream, ResponseParser& response,
            std::string first_piece, std::string_view already_read, bool event_stream,
            StreamClock& clock, Metrics& metrics);

  // Keeps the first `limit` bytes of the body in `into` (diagnostics; never for event streams).
  void CaptureBody(std::string* into, size_t limit) {
    capture_ = into;
    capture_limit_ = limit;
  }

  // Relays until the body ends, the backend fails, the client goes away or the clock ends it.
  boost::asio::awaitable<RelayEnd> Run();

  uint64_t body_bytes() const { return body_bytes_; }
  uint64_t events() const { return tracker_.events_completed(); }
  // The backend sent nothing past the end of the response, so its connection can be reused.
  bool ended_cleanly() const { return response_.is_done() && unparsed_.empty(); }

 private:
  // Reads, decodes and writes until the backend has nothing more for now, the client cannot take
  // more for now, or the relay ends.
  void Step();
  void WaitForBackend();
  void OnBackendWake(const boost::system::error_code& error);
  void WaitForClient();
  void Finish(RelayEnd end);
  // Feeds unparsed_ and the `read` bytes after it (in the thread's buffer) to the parser.
  // Returns the decoded body bytes (in the thread's buffer; empty when there were none), or
  // nothing when the backend's framing is broken.
  std::optional<std::string_view> Decode(size_t read);
  // Sends a piece (or, when empty, the held head) and goes on as the downstream took it.
  // False when the relay waits for the client or ended.
  bool Send(std::string_view piece);

  SocketStream& upstream_;
  Downstream& downstream_;
  ResponseParser& response_;
  std::string first_piece_;  // Until sent.
  std::string unparsed_;     // Bytes read but not parsed yet (a split chunk header): usually none.
  bool head_held_ = true;    // The downstream holds the head: nothing was sent yet.
  bool readable_ = false;    // The backend socket may have bytes: read before waiting.
  bool wait_writable_ = false;   // TLS wants the socket writable before it reads on.
  bool backend_closed_ = false;  // The backend sent its FIN.
  // The awaiting coroutine's handler, held as its own type (an any_completion_handler would box
  // it on the heap for the whole stream).
  using DoneHandler =
      boost::asio::async_result<boost::asio::use_awaitable_t<>, void(RelayEnd)>::handler_type;
  std::optional<DoneHandler> done_;
  const bool event_stream_;
  StreamClock& clock_;
  Metrics& metrics_;
  sse::EventBoundaryTracker tracker_;
  uint64_t body_bytes_ = 0;
  bool body_started_ = false;  // Past where a leading BOM would be.
  size_t bom_held_ = 0;        // Bytes of a leading BOM held back so far.
  std::string* capture_ = nullptr;
  size_t capture_limit_ = 0;
};

}  // namespace apim::dataplane

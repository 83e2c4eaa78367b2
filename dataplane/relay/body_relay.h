#pragma once
// Relays a response body from the backend to the client piece by piece, the moment each piece
// arrives, and holds no buffer while it waits. An open event stream spends nearly all its life
// waiting, so its memory is what limits how many streams a worker can hold: the relay waits for
// the backend socket to become readable, then reads, decodes and writes through a buffer that
// belongs to the thread and is free again before the relay waits. Only what the client does not
// take at once is copied aside (and nothing more is read from the backend until it has taken
// it, so backpressure reaches the backend).
//
// Every event passes through here, so the relay is a plain handler-driven state machine: per
// piece one wait, one read and one write, with no coroutine frames made and resumed.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/admin/metrics.h"
#include "dataplane/relay/sse/event_boundary_tracker.h"
#include "dataplane/relay/stream_clock.h"

namespace apim::dataplane {

// The line that opens a chunk of `size` bytes ("<hex size>\r\n"), written into `out`.
inline constexpr size_t kChunkSizeLineBytes = 16 + 2;
std::string_view ChunkSizeLine(size_t size, char (&out)[kChunkSizeLineBytes]);

// How the response body is framed towards the client.
enum class Framing { kNone, kContentLength, kChunked, kUntilClose };

// How a relay ended. kCut: the stream clock cut it (max duration, idle). kDrained: the worker is
// shutting down and the stream was ended cleanly at an event boundary, so the client reconnects
// elsewhere.
enum class RelayEnd { kComplete, kBackendFailed, kClientGone, kCut, kDrained };

class BodyRelay {
 public:
  using ResponseParser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

  // `response` has parsed the head; `already_read` are the bytes read past it with the head.
  // `head` is the response head for the client, sent with the first piece of the body if one
  // can be read at once, and alone otherwise (before the relay first waits or ends).
  // For an event stream, heartbeats are written between events when the clock asks, and a drain
  // ends the stream at an event boundary.
  BodyRelay(boost::asio::ip::tcp::socket& upstream, boost::asio::ip::tcp::socket& client,
            ResponseParser& response, std::string head, std::string_view already_read,
            Framing framing, bool event_stream, StreamClock& clock, Metrics& metrics);

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
  // Returns the decoded body bytes framed for the client (in the thread's buffer; empty when
  // there were none), or nothing when the backend's framing is broken.
  std::optional<std::string_view> Decode(size_t read);
  // Frames a piece of body that has room around it in the thread's buffer.
  std::string_view Frame(char* piece, size_t size) const;
  // Writes head_ (if not sent yet) and `bytes`, as much as the client takes now, and keeps the
  // rest in unsent_. False when the client is gone.
  bool Write(std::string_view bytes);

  boost::asio::ip::tcp::socket& upstream_;
  boost::asio::ip::tcp::socket& client_;
  ResponseParser& response_;
  std::string head_;       // The response head until it is written.
  std::string unparsed_;   // Bytes read but not parsed yet (a split chunk header): usually none.
  std::string unsent_;     // What the client has not taken yet: usually nothing.
  bool readable_ = false;  // The backend socket may have bytes: read before waiting.
  bool backend_closed_ = false;  // The backend sent its FIN.
  // Emplaced, never assigned: Boost 1.81's move assignment wraps the handler in itself endlessly.
  std::optional<boost::asio::any_completion_handler<void(RelayEnd)>> done_;
  const Framing framing_;
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

#include "dataplane/relay/body_relay.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <utility>

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using tcp = asio::ip::tcp;

// At most this much is read from a backend at once.
constexpr size_t kReadBytes = 16 * 1024;

constexpr std::string_view kHeartbeat = ":\n\n";
constexpr std::string_view kBom = "\xEF\xBB\xBF";

// The thread's relay buffers. A relay uses them only between two waits, so every relay of the
// thread can share them. Decoding never grows the body, so a whole read decodes into
// `decoded` in one go, after room for the bytes of a BOM held back from earlier pieces.
struct ThreadBuffers {
  char read[kReadBytes];
  char decoded[kBom.size() + kReadBytes];
};

ThreadBuffers& Buffers() {
  static thread_local ThreadBuffers buffers;
  return buffers;
}

}  // namespace

BodyRelay::BodyRelay(SocketStream& upstream, Downstream& downstream, ResponseParser& response,
                     std::string first_piece, std::string_view already_read, bool event_stream,
                     StreamClock& clock, Metrics& metrics)
    : upstream_(upstream),
      downstream_(downstream),
      response_(response),
      first_piece_(std::move(first_piece)),
      unparsed_(already_read),
      event_stream_(event_stream),
      clock_(clock),
      metrics_(metrics) {}

awaitable<RelayEnd> BodyRelay::Run() {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(RelayEnd)>(
      [this](auto handler) {
        done_.emplace(std::move(handler));
        // What came with the head is relayed first. With the head still held, the backend is
        // read once before waiting: whatever it has sent already goes in the same write.
        readable_ = true;
        if (!first_piece_.empty()) {
          const std::string piece = std::move(first_piece_);
          if (!Send(piece)) return;
        }
        Step();
      },
      asio::use_awaitable);
}

void BodyRelay::Step() {
  for (;;) {
    // The head goes alone once nothing is to be read now, or the relay ends.
    if (head_held_ && (!readable_ || response_.is_done() || backend_closed_ || clock_.draining())) {
      if (!Send({})) return;
    }
    if (response_.is_done()) return Finish(RelayEnd::kComplete);
    if (backend_closed_) {
      // The end of a close-delimited body; any other body was cut short, and so was an event
      // stream closed inside an event (the client must see a cut, not a clean end).
      beast::error_code error;
      response_.put_eof(error);
      const bool cut = error || (event_stream_ && !tracker_.AtEventBoundary());
      return Finish(cut ? RelayEnd::kBackendFailed : RelayEnd::kComplete);
    }
    // A drain ends an event stream as soon as no event is half sent.
    if (event_stream_ && clock_.draining() && tracker_.AtEventBoundary()) {
      return Finish(RelayEnd::kDrained);
    }
    if (!readable_) return WaitForBackend();

    ThreadBuffers& buffers = Buffers();
    std::memcpy(buffers.read, unparsed_.data(), unparsed_.size());
    const size_t room = kReadBytes - unparsed_.size();
    const SocketStream::Tried got = upstream_.TryRead(buffers.read + unparsed_.size(), room);
    const size_t read = got.bytes;
    readable_ = false;
    wait_writable_ = got.wait == SocketStream::Wait::kWritable;
    if (got.error) return Finish(RelayEnd::kBackendFailed);
    if (read == 0 && got.wait == SocketStream::Wait::kNone) {
      backend_closed_ = true;
    } else if (read > 0) {
      // A full read may have left more behind; TLS hands over one record a read, and more may
      // wait in the socket: read on until it would block.
      readable_ = read == room || upstream_.ssl() != nullptr;
    }  // Otherwise nothing new: only what was left unparsed, then the relay waits again.
    if (read == 0 && unparsed_.empty()) continue;
    std::optional<std::string_view> piece = Decode(read);
    if (!piece) return Finish(RelayEnd::kBackendFailed);
    clock_.Activity();
    if (!piece->empty() && !Send(*piece)) return;
  }
}

bool BodyRelay::Send(std::string_view piece) {
  const Sent sent = piece.empty() ? downstream_.Flush() : downstream_.SendBody(piece);
  head_held_ = false;
  if (sent == Sent::kTaken) return true;
  if (sent == Sent::kGone) {
    Finish(RelayEnd::kClientGone);
  } else {
    WaitForClient();
  }
  return false;
}

void BodyRelay::WaitForBackend() {
  // TLS may need to write before it can read on (rarely: a key update to answer).
  upstream_.socket().async_wait(wait_writable_ ? tcp::socket::wait_write : tcp::socket::wait_read,
                                [this](const beast::error_code& error) { OnBackendWake(error); });
}

void BodyRelay::OnBackendWake(const beast::error_code& error) {
  if (error == asio::error::operation_aborted && clock_.cut_reason().empty()) {
    // The clock cancelled the wait: for a heartbeat, or for a drain (Step checks). A heartbeat
    // goes only between events: a comment inside a half-sent event would change it.
    if (clock_.TakeHeartbeatDue() && tracker_.AtEventBoundary()) {
      ++metrics_.heartbeats_sent;
      clock_.Activity();
      if (!Send(kHeartbeat)) return;
    }
    return Step();
  }
  // Otherwise the backend socket was closed under the wait: by the clock's cut or because the
  // client went away. The caller tells which.
  if (error) return Finish(RelayEnd::kBackendFailed);
  readable_ = true;
  Step();
}

void BodyRelay::WaitForClient() {
  downstream_.WhenTaken([this](bool taken) {
    if (!taken) return Finish(RelayEnd::kClientGone);
    clock_.Activity();
    Step();
  });
}

void BodyRelay::Finish(RelayEnd end) {
  // A backend that failed before the first piece: the client still gets the head (best effort,
  // the response is aborted next), then sees the cut.
  if (head_held_ && end != RelayEnd::kClientGone) downstream_.Flush();
  // Posted, not called: the caller's frame (which holds this relay) must not resume inside it.
  asio::post(upstream_.get_executor(),
             [done = std::move(*done_), end]() mutable { std::move(done)(end); });
}

std::optional<std::string_view> BodyRelay::Decode(size_t read) {
  ThreadBuffers& buffers = Buffers();
  const size_t total = unparsed_.size() + read;
  char* piece = buffers.decoded + kBom.size();
  auto& body = response_.get().body();
  body.data = piece;
  body.size = kReadBytes;
  size_t parsed = 0;
  while (parsed < total && !response_.is_done()) {
    beast::error_code error;
    const size_t used = response_.put(asio::buffer(buffers.read + parsed, total - parsed), error);
    parsed += used;
    // need_more: a chunk header split across reads; the rest of it comes with the next read.
    if (error == http::error::need_more || error == http::error::need_buffer) break;
    if (error) return std::nullopt;  // Broken framing from the backend.
    if (used == 0) break;
  }
  // A chunk header this long is not one (and the read buffer must keep room to read into).
  if (!response_.is_done() && total - parsed > kReadBytes / 2) return std::nullopt;
  if (total == parsed) {
    // Usually nothing is left: give back what an earlier remainder (or the bytes that came with
    // the head) took, so that a waiting stream holds no buffer.
    std::string().swap(unparsed_);
  } else {
    // Often only the CRLF that ends a chunk: then the string keeps it inline, not in what the
    // bytes that came with the head took.
    unparsed_.assign(buffers.read + parsed, total - parsed);
    unparsed_.shrink_to_fit();
  }
  size_t size = kReadBytes - body.size;
  if (size == 0) return std::string_view();

  if (event_stream_) {
    const uint64_t before = tracker_.events_completed();
    tracker_.Feed(std::string_view(piece, size));
    metrics_.events_relayed += tracker_.events_completed() - before;
    // A leading BOM carries nothing, and after a heartbeat written before the first byte it
    // would no longer open the stream but start the first field's name. Its bytes are held
    // back until it is whole, then dropped; bytes that turn out not to be one go on.
    if (!body_started_) {
      size_t matched = 0;
      while (matched < size && bom_held_ < kBom.size() && piece[matched] == kBom[bom_held_]) {
        ++matched;
        ++bom_held_;
      }
      if (matched == size && bom_held_ < kBom.size()) return std::string_view();
      body_started_ = true;
      if (bom_held_ == kBom.size()) {
        piece += matched;
        size -= matched;
        if (size == 0) return std::string_view();
      } else {
        const size_t held_earlier = bom_held_ - matched;
        piece -= held_earlier;
        std::memcpy(piece, kBom.data(), held_earlier);
        size += held_earlier;
      }
    }
  } else if (capture_ != nullptr && capture_->size() < capture_limit_) {
    capture_->append(piece, std::min(size, capture_limit_ - capture_->size()));
  }
  body_bytes_ += size;
  return std::string_view(piece, size);
}

}  // namespace apim::dataplane

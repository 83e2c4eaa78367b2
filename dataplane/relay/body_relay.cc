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
// Room around a decoded piece for its chunk framing: "<hex size>\r\n" before, "\r\n" after.
// Before it there is also room for the bytes of a BOM held back from earlier pieces.
constexpr size_t kChunkHeadroom = kChunkSizeLineBytes + 2;
constexpr size_t kChunkTailroom = 2;

// The thread's relay buffers. A relay uses them only between two waits, so every relay of the
// thread can share them. Decoding never grows the body, so a whole read decodes into
// `decoded` in one go.
struct ThreadBuffers {
  char read[kReadBytes];
  char decoded[kChunkHeadroom + kReadBytes + kChunkTailroom];
};

ThreadBuffers& Buffers() {
  static thread_local ThreadBuffers buffers;
  return buffers;
}

constexpr std::string_view kHeartbeat = ":\n\n";
constexpr std::string_view kBom = "\xEF\xBB\xBF";

}  // namespace

BodyRelay::BodyRelay(tcp::socket& upstream, tcp::socket& client, ResponseParser& response,
                     std::string head, std::string_view already_read, Framing framing,
                     bool event_stream, StreamClock& clock, Metrics& metrics)
    : upstream_(upstream),
      client_(client),
      response_(response),
      head_(std::move(head)),
      unparsed_(already_read),
      framing_(framing),
      event_stream_(event_stream),
      clock_(clock),
      metrics_(metrics) {}

awaitable<RelayEnd> BodyRelay::Run() {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(RelayEnd)>(
      [this](auto handler) {
        done_.emplace(std::move(handler));
        // What came with the head is relayed first. With the head still to send, the backend
        // is read once before waiting: whatever it has sent already goes in the same write.
        readable_ = !unparsed_.empty() || !head_.empty();
        Step();
      },
      asio::use_awaitable);
}

void BodyRelay::Step() {
  for (;;) {
    // The head goes alone once nothing is to be read now, or the relay ends.
    if (!head_.empty() &&
        (!readable_ || response_.is_done() || backend_closed_ || clock_.draining())) {
      if (!Write({})) return Finish(RelayEnd::kClientGone);
      if (!unsent_.empty()) return WaitForClient();
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
    // MSG_DONTWAIT: a read that would block returns EAGAIN, whatever the socket's mode.
    const ssize_t got =
        ::recv(upstream_.native_handle(), buffers.read + unparsed_.size(), room, MSG_DONTWAIT);
    size_t read = got > 0 ? static_cast<size_t>(got) : 0;
    readable_ = false;
    if (got < 0 && errno == EINTR) {
      readable_ = true;
      continue;
    }
    if (got == 0) {
      backend_closed_ = true;
    } else if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return Finish(RelayEnd::kBackendFailed);
    } else if (got > 0) {
      readable_ = read == room;  // A full read may have left more behind.
    }  // Otherwise nothing new: only what was left unparsed, then the relay waits again.
    if (read == 0 && unparsed_.empty()) continue;
    std::optional<std::string_view> out = Decode(read);
    if (!out) return Finish(RelayEnd::kBackendFailed);
    clock_.Activity();
    if (!Write(*out)) return Finish(RelayEnd::kClientGone);
    if (!unsent_.empty()) return WaitForClient();
  }
}

void BodyRelay::WaitForBackend() {
  upstream_.async_wait(tcp::socket::wait_read,
                       [this](const beast::error_code& error) { OnBackendWake(error); });
}

void BodyRelay::OnBackendWake(const beast::error_code& error) {
  if (error == asio::error::operation_aborted && clock_.cut_reason().empty()) {
    // The clock cancelled the wait: for a heartbeat, or for a drain (Step checks). A heartbeat
    // goes only between events: a comment inside a half-sent event would change it.
    if (clock_.TakeHeartbeatDue() && tracker_.AtEventBoundary()) {
      char* piece = Buffers().decoded + kChunkHeadroom;
      std::memcpy(piece, kHeartbeat.data(), kHeartbeat.size());
      if (!Write(Frame(piece, kHeartbeat.size()))) return Finish(RelayEnd::kClientGone);
      ++metrics_.heartbeats_sent;
      clock_.Activity();
      if (!unsent_.empty()) return WaitForClient();
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
  // To the bare socket, with no timer: a client that stops reading stalls only its own relay,
  // and the stream clock's idle timeout ends it.
  asio::async_write(client_, asio::buffer(unsent_), [this](const beast::error_code& error, size_t) {
    unsent_ = std::string();
    if (error) return Finish(RelayEnd::kClientGone);
    clock_.Activity();
    Step();
  });
}

void BodyRelay::Finish(RelayEnd end) {
  // A backend that failed before the first piece: the client still gets the head (best effort,
  // the connection is closed next), then sees the cut.
  if (!head_.empty() && end != RelayEnd::kClientGone) Write({});
  // Posted, not called: the caller's frame (which holds this relay) must not resume inside it.
  asio::post(client_.get_executor(),
             [done = std::move(*done_), end]() mutable { std::move(done)(end); });
}

std::optional<std::string_view> BodyRelay::Decode(size_t read) {
  ThreadBuffers& buffers = Buffers();
  const size_t total = unparsed_.size() + read;
  char* piece = buffers.decoded + kChunkHeadroom;
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
  unparsed_.assign(buffers.read + parsed, total - parsed);
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
  return Frame(piece, size);
}

std::string_view ChunkSizeLine(size_t size, char (&out)[kChunkSizeLineBytes]) {
  char* end = std::to_chars(out, out + kChunkSizeLineBytes - 2, size, 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  return std::string_view(out, static_cast<size_t>(end - out));
}

std::string_view BodyRelay::Frame(char* piece, size_t size) const {
  if (framing_ != Framing::kChunked) return std::string_view(piece, size);
  // The piece has room before it for its size line and after it for the CRLF, so the whole
  // chunk is one contiguous write.
  char out[kChunkSizeLineBytes];
  const std::string_view size_line = ChunkSizeLine(size, out);
  const size_t length = size_line.size();
  char* start = piece - length;
  std::memcpy(start, size_line.data(), length);
  piece[size] = '\r';
  piece[size + 1] = '\n';
  return std::string_view(start, length + size + kChunkTailroom);
}

bool BodyRelay::Write(std::string_view bytes) {
  iovec parts[2];
  size_t count = 0;
  if (!head_.empty()) parts[count++] = {head_.data(), head_.size()};
  if (!bytes.empty()) parts[count++] = {const_cast<char*>(bytes.data()), bytes.size()};
  if (count == 0) return true;
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = count;
  // MSG_NOSIGNAL: a client that went away is an error here, not a SIGPIPE.
  const ssize_t written = ::sendmsg(client_.native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (written < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
  // The thread's buffer is reused once the relay waits: keep what the client did not take.
  size_t taken = written > 0 ? static_cast<size_t>(written) : 0;
  if (taken < head_.size()) {
    unsent_.assign(head_, taken);
    unsent_.append(bytes);
  } else {
    unsent_.assign(bytes.substr(taken - head_.size()));
  }
  std::string().swap(head_);
  return true;
}

}  // namespace apim::dataplane

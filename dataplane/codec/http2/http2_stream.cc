#include "dataplane/codec/http2/http2_stream.h"

#include <boost/asio/post.hpp>
#include <charconv>
#include <cstring>

#include "dataplane/codec/http2/http2_connection.h"
#include "dataplane/exchange/exchange_io.h"

namespace apim::dataplane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;

Http2Stream::Http2Stream(Http2Connection& connection, int32_t id)
    : connection_(connection), id_(id) {}

Http2Stream::~Http2Stream() = default;

bool Http2Stream::secure() const { return connection_.secure(); }

void Http2Stream::AddField(std::string_view name, std::string_view value, size_t limit) {
  if (headers_complete_ || header_list_too_large_) return;  // Trailers are not forwarded.
  header_bytes_ += name.size() + value.size() + 32;
  if (header_bytes_ > limit) {
    header_list_too_large_ = true;
    request_ = {};
    return;
  }
  AddRequestField(request_, name, value);
}

void Http2Stream::HeadersComplete(bool end_stream) {
  headers_complete_ = true;
  request_ended_ = end_stream;
  request_.version(20);
  head_only_ = request_.method() == http::verb::head;
  // nghttp2 has checked that a Content-Length is a number and will match the DATA received.
  if (const std::string_view length = request_[http::field::content_length]; !length.empty()) {
    uint64_t value = 0;
    if (std::from_chars(length.data(), length.data() + length.size(), value).ec == std::errc()) {
      content_length_ = value;
    }
  }
}

bool Http2Stream::Received(std::string_view data) {
  if (closed_ || end_sent_) return false;
  request_body_.append(data);
  Wake();
  return true;
}

void Http2Stream::RequestEnded() {
  request_ended_ = true;
  Wake();
}

void Http2Stream::EndSent() {
  end_sent_ = true;
  Wake();
}

void Http2Stream::Closed() {
  if (closed_) return;
  closed_ = true;
  // The client reset the stream, or the connection went: the backend is closed at once.
  if (!end_sent_ && backend_ != nullptr) {
    boost::system::error_code ignored;
    backend_->close(ignored);
  }
  CompleteTaken(false);
  Wake();
}

ssize_t Http2Stream::ReadResponseBody(uint8_t* into, size_t length, uint32_t* flags) {
  size_t copied = 0;
  if (kept_from_ < kept_.size()) {
    copied = std::min(length, kept_.size() - kept_from_);
    std::memcpy(into, kept_.data() + kept_from_, copied);
    kept_from_ += copied;
    if (kept_from_ == kept_.size()) {
      std::string().swap(kept_);
      kept_from_ = 0;
      CompleteTaken(true);
    }
  } else if (!offered_.empty()) {
    copied = std::min(length, offered_.size());
    std::memcpy(into, offered_.data(), copied);
    offered_.remove_prefix(copied);
  }
  if (body_complete_ && kept_.empty() && offered_.empty()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(copied);
  }
  // Nothing to frame now: nghttp2 waits for Resume.
  if (copied == 0) return NGHTTP2_ERR_DEFERRED;
  return static_cast<ssize_t>(copied);
}

awaitable<void> Http2Stream::AskForBody() {
  static constexpr char kStatus[] = ":status";
  static constexpr char kContinue[] = "100";
  nghttp2_nv field{reinterpret_cast<uint8_t*>(const_cast<char*>(kStatus)),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(kContinue)), sizeof kStatus - 1,
                   sizeof kContinue - 1, NGHTTP2_NV_FLAG_NONE};
  if (!closed_) {
    nghttp2_submit_headers(connection_.session(), NGHTTP2_FLAG_NONE, id_, nullptr, &field, 1,
                           nullptr);
    connection_.Flush();
  }
  co_return;
}

awaitable<BodyRead> Http2Stream::ReadBody(std::span<char> into) {
  co_await WaitUntil([this] { return !request_body_.empty() || request_ended_ || closed_; },
                     connection_.context().limits.idle_timeout);
  if (!request_body_.empty()) {
    const size_t size = std::min(into.size(), request_body_.size());
    std::memcpy(into.data(), request_body_.data(), size);
    request_body_.erase(0, size);
    if (request_body_.empty() && request_ended_) std::string().swap(request_body_);
    // Gives the window back: the client may send that much more.
    nghttp2_session_consume(connection_.session(), id_, size);
    connection_.Flush();
    co_return BodyRead{{}, size};
  }
  if (request_ended_) co_return BodyRead{{}, 0};
  if (closed_) co_return BodyRead{asio::error::connection_reset, 0};
  co_return BodyRead{beast::error::timeout, 0};
}

awaitable<bool> Http2Stream::SendAnswer(http::response<http::string_body> response) {
  if (closed_) co_return false;
  body_ = response.body().empty() || head_only_ ? ResponseBody::kNone : ResponseBody::kKnownLength;
  held_.emplace(response.result_int(), response, /*drop_length=*/false);
  if (body_ != ResponseBody::kNone) kept_ = std::move(response.body());
  kept_from_ = 0;
  body_complete_ = true;
  Submit();
  connection_.Flush();
  co_await WaitUntil([this] { return end_sent_ || closed_; },
                     connection_.context().limits.idle_timeout);
  co_return end_sent_;
}

void Http2Stream::SendHead(http::response<http::empty_body>& head, ResponseBody body) {
  body_ = head_only_ ? ResponseBody::kNone : body;
  held_.emplace(head.result_int(), head, /*drop_length=*/body == ResponseBody::kUnknownLength);
}

void Http2Stream::Submit() {
  if (submitted_ || closed_ || !held_) return;
  submitted_ = true;
  const nghttp2_data_provider source = Http2Connection::BodySource();
  nghttp2_submit_response(connection_.session(), id_, held_->data(), held_->size(),
                          body_ == ResponseBody::kNone ? nullptr : &source);
  held_.reset();
}

void Http2Stream::Resume() {
  nghttp2_session_resume_data(connection_.session(), id_);
  connection_.Flush();
}

Sent Http2Stream::SendBody(std::string_view piece) {
  if (closed_ || reset_sent_) return Sent::kGone;
  Submit();
  if (kept_.empty()) {
    offered_ = piece;
  } else {
    kept_.append(piece);
  }
  Resume();
  // The piece is the relay's, reused once it waits: what nghttp2 did not frame is kept.
  if (!offered_.empty()) {
    kept_.assign(offered_);
    kept_from_ = 0;
    offered_ = {};
  }
  if (closed_) return Sent::kGone;
  return kept_.empty() ? Sent::kTaken : Sent::kKept;
}

Sent Http2Stream::Flush() {
  if (closed_ || reset_sent_) return Sent::kGone;
  Submit();
  connection_.Flush();
  return kept_.empty() ? Sent::kTaken : Sent::kKept;
}

void Http2Stream::WhenTaken(asio::any_completion_handler<void(bool)> handler) {
  taken_.emplace(std::move(handler));
  if (closed_ || reset_sent_) {
    CompleteTaken(false);
  } else if (kept_.empty()) {
    CompleteTaken(true);
  }
}

void Http2Stream::CompleteTaken(bool taken) {
  if (!taken_) return;
  asio::any_completion_handler<void(bool)> handler = std::move(*taken_);
  taken_.reset();
  asio::post(connection_.executor(),
             [handler = std::move(handler), taken]() mutable { std::move(handler)(taken); });
}

awaitable<bool> Http2Stream::Finish() {
  if (closed_ || reset_sent_) co_return end_sent_;
  body_complete_ = true;
  Submit();
  Resume();
  co_await WaitUntil([this] { return end_sent_ || closed_; },
                     connection_.context().limits.idle_timeout);
  co_return end_sent_;
}

void Http2Stream::Abort() {
  if (!closed_ && !reset_sent_ && !end_sent_) {
    reset_sent_ = true;
    // RFC 9113 section 7: INTERNAL_ERROR, not CANCEL, which is the client's word for "no longer
    // needed". A browser's EventSource reconnects.
    nghttp2_submit_rst_stream(connection_.session(), NGHTTP2_FLAG_NONE, id_,
                              NGHTTP2_INTERNAL_ERROR);
    connection_.Flush();
  }
  CompleteTaken(false);
}

void Http2Stream::CloseOnClientGone(asio::ip::tcp::socket& backend) {
  backend_ = &backend;
  if (closed_ && !end_sent_) {
    boost::system::error_code ignored;
    backend.close(ignored);
  }
}

ClientState Http2Stream::StopWatchingClient() {
  backend_ = nullptr;
  return closed_ && !end_sent_ ? ClientState::kGone : ClientState::kPresent;
}

template <typename Done>
awaitable<bool> Http2Stream::WaitUntil(Done done, std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    wait_ = std::make_unique<asio::steady_timer>(connection_.executor(), deadline);
    co_await wait_->async_wait(kNoThrow);
    wait_.reset();
  }
  co_return true;
}

void Http2Stream::Wake() {
  if (wait_) wait_->cancel();
}

}  // namespace apim::dataplane

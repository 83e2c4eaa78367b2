// The exchange and the relay are written against the Downstream interface, not against HTTP/1.1.
// These tests prove the seam carries an HTTP/2-like stream: an in-memory downstream with a
// flow-control window and a per-stream reset drives the real Exchange and BodyRelay against a
// real SSE backend on loopback. While the window is 0 the relay stops reading its backend, and
// resumes when the window opens; a reset closes the backend connection at once.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/str_cat.h"
#include "dataplane/exchange/downstream.h"
#include "dataplane/exchange/exchange.h"
#include "tests/support/snapshots.h"
#include "tests/support/sse_backend.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// One stream of a multiplexed connection, kept in memory. Heads are not flow-controlled (as
// HEADERS frames are not); body bytes are taken only as far as the window allows, and the rest
// is kept until the window opens (as DATA frames wait for WINDOW_UPDATE).
class FlowControlledDownstream final : public Downstream {
 public:
  FlowControlledDownstream(asio::io_context& io, std::string target, size_t window)
      : io_(io), window_(window) {
    request_.method(http::verb::get);
    request_.target(target);
    request_.version(20);
    request_.set(http::field::host, "gateway.test");
    request_.set(http::field::accept, "text/event-stream");
  }

  http::request_header<>& request() override { return request_; }
  bool secure() const override { return false; }
  void ReleaseRequestHead() override { request_.clear(); }
  bool request_body_done() const override { return true; }
  std::optional<uint64_t> request_content_length() const override { return std::nullopt; }
  asio::awaitable<void> AskForBody() override { co_return; }
  asio::awaitable<BodyRead> ReadBody(std::span<char>) override {
    co_return BodyRead{asio::error::operation_not_supported, 0};
  }

  asio::awaitable<bool> SendAnswer(http::response<http::string_body> response) override {
    status_ = response.result_int();
    received_ = response.body();
    co_return !reset_;
  }
  void SendHead(http::response<http::empty_body>& head, ResponseBody) override {
    status_ = head.result_int();
    content_type_ = std::string(head[http::field::content_type]);
  }
  Sent SendBody(std::string_view piece) override {
    EXPECT_TRUE(kept_.empty()) << "a piece was sent before the kept one was taken";
    ++pieces_;
    if (reset_) return Sent::kGone;
    const size_t take = std::min(window_, piece.size());
    received_.append(piece.substr(0, take));
    window_ -= take;
    kept_.assign(piece.substr(take));
    return kept_.empty() ? Sent::kTaken : Sent::kKept;
  }
  Sent Flush() override { return reset_ ? Sent::kGone : Sent::kTaken; }
  void WhenTaken(asio::any_completion_handler<void(bool)> handler) override {
    waiting_.emplace(std::move(handler));
  }
  asio::awaitable<bool> Finish() override {
    finished_ = true;
    co_return !reset_;
  }
  void Abort() override {
    aborted_ = true;
    Complete(false);
  }
  AfterExchange after() const override { return AfterExchange::kKeepAlive; }
  void CloseOnClientGone(asio::ip::tcp::socket& backend) override { backend_ = &backend; }
  ClientState StopWatchingClient() override {
    backend_ = nullptr;
    return reset_ ? ClientState::kGone : ClientState::kPresent;
  }

  // The client's side, on the io_context's thread.
  // WINDOW_UPDATE: kept bytes are taken first; a relay that waited goes on once all are.
  void OpenWindow(size_t bytes) {
    window_ += bytes;
    const size_t take = std::min(window_, kept_.size());
    received_.append(kept_, 0, take);
    kept_.erase(0, take);
    window_ -= take;
    if (kept_.empty()) Complete(true);
  }
  // RST_STREAM: the stream is gone, and its backend is closed at once.
  void Reset() {
    reset_ = true;
    boost::system::error_code ignored;
    if (backend_ != nullptr) backend_->close(ignored);
    Complete(false);
  }

  bool relay_waiting() const { return waiting_.has_value(); }
  const std::string& received() const { return received_; }
  size_t pieces() const { return pieces_; }
  size_t kept() const { return kept_.size(); }
  unsigned status() const { return status_; }
  const std::string& content_type() const { return content_type_; }
  bool finished() const { return finished_; }
  bool aborted() const { return aborted_; }

 private:
  void Complete(bool taken) {
    if (!waiting_) return;
    auto handler = std::move(*waiting_);
    waiting_.reset();
    asio::post(io_, [handler = std::move(handler), taken]() mutable { std::move(handler)(taken); });
  }

  asio::io_context& io_;
  http::request_header<> request_;
  size_t window_;
  std::string received_;
  std::string kept_;
  std::optional<asio::any_completion_handler<void(bool)>> waiting_;
  asio::ip::tcp::socket* backend_ = nullptr;
  size_t pieces_ = 0;
  unsigned status_ = 0;
  std::string content_type_;
  bool reset_ = false;
  bool finished_ = false;
  bool aborted_ = false;
};

class FlowControlledDownstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto port = backend_.Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status();
    v1::Snapshot snapshot = testing::SnapshotOn(testing::StreamingTier());
    testing::AddApi(snapshot, "feed", "/feed", StrCat("http://127.0.0.1:", *port)).set_sse(true);
    auto compiled = RuntimeSnapshot::Compile(std::move(snapshot));
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    snapshots_.Publish(*compiled);
  }

  // Starts the real exchange for `downstream`; `result_` is set when it has ended.
  void StartExchange(Downstream& downstream) {
    exchange_.emplace(context_, downstream, "127.0.0.1");
    asio::co_spawn(io_, exchange_->Run(), [this](std::exception_ptr error, AfterExchange after) {
      EXPECT_FALSE(error) << "the exchange threw";
      result_ = after;
    });
  }

  // Runs the worker's loop until `done` holds, for at most `timeout`.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io_.run_for(5ms);
    }
    return true;
  }

  testing::SseBackend backend_;
  asio::io_context io_;
  SnapshotStore snapshots_;
  Metrics metrics_;
  UpstreamPool pool_{io_.get_executor()};
  ProxyLimits limits_;
  std::unordered_set<StreamClock*> open_relays_;
  std::unordered_set<Http2Connection*> http2_connections_;
  std::atomic<bool> draining_{false};
  RateLimiter rate_limiter_{metrics_};
  ResponseCache cache_{1 << 20};
  SubscriptionStreams subscription_streams_;
  BufferBudget buffer_budget_{1 << 20, metrics_};
  SharedStateOptions shared_state_options_;  // No server: limits count locally.
  SharedStateStatus shared_state_status_{metrics_, /*fail_closed=*/false};
  SharedCounters shared_counters_{io_.get_executor(), shared_state_options_, rate_limiter_,
                                  subscription_streams_, shared_state_status_, metrics_};
  SessionContext context_{.snapshots = snapshots_,
                          .metrics = metrics_,
                          .pool = pool_,
                          .limits = limits_,
                          .open_relays = open_relays_,
                          .http2_connections = http2_connections_,
                          .draining = draining_,
                          .rate_limiter = rate_limiter_,
                          .cache = cache_,
                          .subscription_streams = subscription_streams_,
                          .buffer_budget = buffer_budget_,
                          .shared_counters = shared_counters_};
  std::optional<Exchange> exchange_;
  std::optional<AfterExchange> result_;
};

TEST_F(FlowControlledDownstreamTest, AStreamStallsWhileItsWindowIsZeroAndResumesWhenItOpens) {
  FlowControlledDownstream stream(io_, "/feed/events?count=20&interval_ms=1&size=200", 0);
  StartExchange(stream);

  // The head is not flow-controlled; the first piece of body is kept and the relay waits.
  ASSERT_TRUE(RunUntil([&] { return stream.relay_waiting(); })) << "the relay never waited";
  EXPECT_EQ(stream.status(), 200u);
  EXPECT_EQ(stream.content_type(), "text/event-stream");
  EXPECT_EQ(stream.received(), "");
  EXPECT_GT(stream.kept(), 0u);
  // Meanwhile the backend sends all its events; while the window stays 0 the relay reads none
  // of them and sends nothing more.
  ASSERT_TRUE(RunUntil([&] { return backend_.stats().events_sent == 20; }));
  const size_t pieces = stream.pieces();
  io_.run_for(200ms);
  EXPECT_EQ(stream.pieces(), pieces) << "the relay read its backend while the window was 0";
  EXPECT_EQ(stream.received(), "");
  EXPECT_FALSE(result_.has_value());

  // A window too small for the kept piece lets part of it through and the relay still waits.
  stream.OpenWindow(10);
  io_.run_for(50ms);
  EXPECT_EQ(stream.received().size(), 10u);
  EXPECT_TRUE(stream.relay_waiting());
  EXPECT_EQ(stream.pieces(), pieces);

  // An open window lets the rest through, in order, and the response ends cleanly.
  stream.OpenWindow(1 << 20);
  ASSERT_TRUE(RunUntil([&] { return result_.has_value(); })) << "the stream never resumed";
  EXPECT_GT(stream.pieces(), pieces);
  for (int id = 1; id <= 20; ++id) {
    EXPECT_NE(stream.received().find(StrCat("id: ", id, "\n")), std::string::npos) << id;
  }
  EXPECT_LT(stream.received().find("id: 3\n"), stream.received().find("id: 4\n"));
  EXPECT_TRUE(stream.finished());
  EXPECT_FALSE(stream.aborted());
  EXPECT_EQ(metrics_.active_streams.load(), 0);
  EXPECT_EQ(metrics_.events_relayed.load(), 20u);
}

TEST_F(FlowControlledDownstreamTest, AResetClosesItsBackendAtOnce) {
  // The backend sends its first event, then nothing for 30 s.
  FlowControlledDownstream stream(io_, "/feed/events?count=2&interval_ms=30000", 1 << 20);
  StartExchange(stream);
  ASSERT_TRUE(RunUntil([&] { return stream.received().find("id: 1\n") != std::string::npos; }));
  EXPECT_EQ(metrics_.active_streams.load(), 1);
  ASSERT_EQ(backend_.stats().open_streams, 1u);

  stream.Reset();
  // The backend sees its connection closed now, not when its next event's write would fail.
  ASSERT_TRUE(RunUntil([&] { return backend_.stats().streams_closed_by_client == 1; }, 2s))
      << "the backend connection stayed open after the stream was reset";
  ASSERT_TRUE(RunUntil([&] { return result_.has_value(); }));
  EXPECT_EQ(*result_, AfterExchange::kClose);
  EXPECT_FALSE(stream.finished());
  EXPECT_EQ(metrics_.active_streams.load(), 0);
  EXPECT_EQ(backend_.stats().events_sent, 1u);
}

}  // namespace
}  // namespace apim::dataplane

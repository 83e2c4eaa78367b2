#include "tests/support/sse_backend.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace apim::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
using Headers = std::vector<std::pair<std::string, std::string>>;

// Runs a client coroutine on a private io_context for at most `limit`, so no test can hang.
template <typename T>
T RunFor(asio::awaitable<T> task, milliseconds limit = 10s) {
  asio::io_context context;
  std::future<T> result = asio::co_spawn(context, std::move(task), asio::use_future);
  context.run_for(limit);
  if (result.wait_for(0s) != std::future_status::ready) {
    throw std::runtime_error("client did not finish in time");
  }
  return result.get();
}

asio::awaitable<beast::tcp_stream> Connect(uint16_t port) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(5s);  // the whole exchange; see RunFor for the outer bound
  co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                asio::use_awaitable);
  co_return stream;
}

asio::awaitable<http::response<http::string_body>> Request(uint16_t port, http::verb method,
                                                           std::string target,
                                                           std::string body = "",
                                                           Headers headers = {}) {
  beast::tcp_stream stream = co_await Connect(port);
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty() || method == http::verb::post || method == http::verb::put) {
    req.body() = std::move(body);
    req.prepare_payload();
  }
  co_await http::async_write(stream, req, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  co_await http::async_read(stream, buffer, res, asio::use_awaitable);
  co_return res;
}

http::response<http::string_body> Get(uint16_t port, std::string target) {
  return RunFor(Request(port, http::verb::get, std::move(target)));
}

struct StreamResult {
  unsigned status = 0;
  std::string content_type;
  std::string cache_control;
  bool chunked = false;
  bool has_content_length = false;
  std::string body;
  std::vector<std::pair<milliseconds, std::string>> pieces;  // arrival time after the header
  bool complete = false;  // the body ended the way its framing says a body ends
  boost::system::error_code error;
};

// GETs `target` and reads the response as it streams, until the body ends or `stop_when` says
// so (checked after the header and after every piece); then the client closes the connection.
asio::awaitable<StreamResult> ReadStream(
    uint16_t port, std::string target, Headers headers = {},
    std::function<bool(const StreamResult&)> stop_when = nullptr) {
  beast::tcp_stream stream = co_await Connect(port);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::accept, "text/event-stream");
  for (const auto& [name, value] : headers) req.set(name, value);
  co_await http::async_write(stream, req, asio::use_awaitable);

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  co_await http::async_read_header(stream, buffer, parser, asio::use_awaitable);
  StreamResult result;
  const auto& head = parser.get();
  result.status = head.result_int();
  result.content_type = std::string(head[http::field::content_type]);
  result.cache_control = std::string(head[http::field::cache_control]);
  result.chunked = head.chunked();
  result.has_content_length = head.find(http::field::content_length) != head.end();
  const Clock::time_point header_at = Clock::now();
  if (stop_when && stop_when(result)) co_return result;

  std::array<char, 4096> scratch;
  for (int reads = 0; reads < 100'000 && !parser.is_done(); ++reads) {
    parser.get().body().data = scratch.data();
    parser.get().body().size = scratch.size();
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kNoThrow);
    if (ec == http::error::need_buffer) ec = {};
    size_t got = scratch.size() - parser.get().body().size;
    if (got > 0) {
      result.body.append(scratch.data(), got);
      result.pieces.emplace_back(std::chrono::duration_cast<milliseconds>(Clock::now() - header_at),
                                 std::string(scratch.data(), got));
    }
    if (ec) {
      result.error = ec;
      co_return result;
    }
    if (stop_when && stop_when(result)) co_return result;
  }
  result.complete = parser.is_done();
  co_return result;
}

StreamResult Stream(uint16_t port, std::string target, Headers headers = {},
                    std::function<bool(const StreamResult&)> stop_when = nullptr) {
  return RunFor(ReadStream(port, std::move(target), std::move(headers), std::move(stop_when)));
}

struct Event {
  std::string id;
  std::string data;
};

// The backend writes LF line ends only; the load tool's parser handles the general case.
std::vector<Event> Events(const std::string& body) {
  std::vector<Event> events;
  size_t start = 0;
  for (size_t end; (end = body.find("\n\n", start)) != std::string::npos; start = end + 2) {
    Event event;
    std::string block = body.substr(start, end - start);
    size_t line_start = 0;
    while (line_start <= block.size()) {
      size_t line_end = block.find('\n', line_start);
      if (line_end == std::string::npos) line_end = block.size();
      std::string line = block.substr(line_start, line_end - line_start);
      if (line.starts_with("id: ")) event.id = line.substr(4);
      if (line.starts_with("data: ")) event.data = line.substr(6);
      line_start = line_end + 1;
    }
    if (!event.data.empty()) events.push_back(event);
  }
  return events;
}

uint64_t JsonNumber(const std::string& json, const std::string& name) {
  size_t at = json.find("\"" + name + "\":");
  if (at == std::string::npos) throw std::runtime_error(name + " missing in " + json);
  return std::stoull(json.substr(at + name.size() + 3));
}

uint64_t RealtimeNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class SseBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<uint16_t> port = backend_.Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // Long-polls /stats until the backend has seen `n` streams closed by their clients.
  std::string AwaitClosedByClient(uint64_t n) {
    auto res = Get(port_, "/stats?wait_closed_by_client=" + std::to_string(n) + "&timeout_ms=5000");
    EXPECT_EQ(res.result_int(), 200u);
    return res.body();
  }

  static SseBackendOptions TwoThreads() {
    SseBackendOptions options;
    options.threads = 2;
    return options;
  }
  SseBackend backend_{TwoThreads()};
  uint16_t port_ = 0;
};

TEST_F(SseBackendTest, EventsArriveNumberedWithTheirSendTime) {
  uint64_t before = RealtimeNs();
  StreamResult result = Stream(port_, "/events?count=3&interval_ms=10");
  uint64_t after = RealtimeNs();

  EXPECT_EQ(result.status, 200u);
  EXPECT_EQ(result.content_type, "text/event-stream");
  EXPECT_EQ(result.cache_control, "no-cache");
  EXPECT_TRUE(result.chunked);
  EXPECT_TRUE(result.complete) << result.error.message();
  std::vector<Event> events = Events(result.body);
  ASSERT_EQ(events.size(), 3u) << result.body;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].id, std::to_string(i + 1));
    EXPECT_EQ(JsonNumber(events[i].data, "seq"), i + 1);
    uint64_t ts = JsonNumber(events[i].data, "ts_ns");
    EXPECT_GE(ts, before);
    EXPECT_LE(ts, after);
  }
  EXPECT_EQ(backend_.stats().events_sent, 3u);
  EXPECT_EQ(backend_.stats().streams_closed_by_client, 0u);
}

TEST_F(SseBackendTest, AnyPathPrefixBeforeEventsIsServed) {
  StreamResult result = Stream(port_, "/base/v1/events?count=1&interval_ms=0");
  EXPECT_EQ(result.status, 200u);
  EXPECT_EQ(Events(result.body).size(), 1u);
}

TEST_F(SseBackendTest, SizePadsEachEvent) {
  StreamResult result = Stream(port_, "/events?count=2&interval_ms=0&size=2000");
  ASSERT_EQ(Events(result.body).size(), 2u);
  EXPECT_NEAR(static_cast<double>(result.body.size()), 4000.0, 4.0);
}

TEST_F(SseBackendTest, LastEventIdHeaderResumesAfterThatIdAndIsEchoed) {
  StreamResult result = Stream(port_, "/events?count=2&interval_ms=0", {{"Last-Event-ID", "41"}});
  EXPECT_TRUE(result.body.starts_with(": last-event-id 41\n")) << result.body;
  std::vector<Event> events = Events(result.body);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "42");
  EXPECT_EQ(events[1].id, "43");
}

TEST_F(SseBackendTest, LastEventIdQueryParameterResumesToo) {
  StreamResult result = Stream(port_, "/events?count=1&interval_ms=0&last_event_id=7");
  std::vector<Event> events = Events(result.body);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, "8");
}

TEST_F(SseBackendTest, DieAfterClosesWithoutTheChunkedTerminator) {
  StreamResult result = Stream(port_, "/events?interval_ms=5&die_after=2");
  EXPECT_EQ(Events(result.body).size(), 2u);
  EXPECT_FALSE(result.complete);
  EXPECT_EQ(result.error, http::error::partial_message) << result.error.message();
  EXPECT_EQ(backend_.stats().streams_closed_by_client, 0u);
}

TEST_F(SseBackendTest, DieWithRstResetsTheConnection) {
  StreamResult result = Stream(port_, "/events?interval_ms=5&die_after=1&die=rst");
  EXPECT_FALSE(result.complete);
  EXPECT_TRUE(result.error) << "the stream should end in an error";
}

TEST_F(SseBackendTest, CloseFramingEndsTheBodyByClosingTheConnection) {
  StreamResult result = Stream(port_, "/events?count=2&interval_ms=0&framing=close");
  EXPECT_FALSE(result.chunked);
  EXPECT_FALSE(result.has_content_length);
  EXPECT_TRUE(result.complete) << result.error.message();
  EXPECT_EQ(Events(result.body).size(), 2u);
}

TEST_F(SseBackendTest, PauseMidEventSendsHalfAnEventThenTheRest) {
  StreamResult result =
      Stream(port_, "/events?count=2&interval_ms=0&pause_after=1&pause_mid_event_ms=300");
  ASSERT_TRUE(result.complete) << result.error.message();
  EXPECT_EQ(Events(result.body).size(), 2u);
  std::string before_gap;
  bool saw_gap = false;
  for (size_t i = 0; i < result.pieces.size(); ++i) {
    if (i > 0 && result.pieces[i].first - result.pieces[i - 1].first >= 250ms) {
      saw_gap = true;
      break;
    }
    before_gap += result.pieces[i].second;
  }
  ASSERT_TRUE(saw_gap) << "no pause between pieces";
  EXPECT_NE(before_gap.find("id: 2\ndata: {"), std::string::npos) << before_gap;
  EXPECT_FALSE(before_gap.ends_with("\n")) << "the pause should fall inside the data line";
}

TEST_F(SseBackendTest, ClosingTheClientIsSeenByTheBackend) {
  StreamResult result = Stream(port_, "/events?interval_ms=20", {},
                               [](const StreamResult& r) { return Events(r.body).size() >= 2; });
  ASSERT_GE(Events(result.body).size(), 2u);

  Clock::time_point start = Clock::now();
  std::string stats = AwaitClosedByClient(1);
  EXPECT_LT(Clock::now() - start, 4s) << "the long-poll should answer on the close, not time out";
  EXPECT_EQ(JsonNumber(stats, "streams_closed_by_client"), 1u);
  EXPECT_EQ(JsonNumber(stats, "open_streams"), 0u);
  EXPECT_EQ(JsonNumber(stats, "streams_started"), 1u);
}

TEST_F(SseBackendTest, ClosingTheClientOfASilentStreamIsSeenToo) {
  StreamResult result = Stream(port_, "/events?idle_after=0", {},
                               [](const StreamResult&) { return true; });  // right after the head
  ASSERT_EQ(result.status, 200u);
  EXPECT_TRUE(result.body.empty());

  Clock::time_point start = Clock::now();
  std::string stats = AwaitClosedByClient(1);
  EXPECT_LT(Clock::now() - start, 4s);
  EXPECT_EQ(JsonNumber(stats, "streams_closed_by_client"), 1u);
  EXPECT_EQ(JsonNumber(stats, "open_streams"), 0u);
}

TEST_F(SseBackendTest, StatsLongPollAnswersAfterItsTimeoutWhenNothingCloses) {
  Clock::time_point start = Clock::now();
  auto res = Get(port_, "/stats?wait_closed_by_client=1&timeout_ms=200");
  EXPECT_GE(Clock::now() - start, 190ms);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(JsonNumber(res.body(), "streams_closed_by_client"), 0u);
}

TEST_F(SseBackendTest, JsonHasContentLength) {
  auto res = Get(port_, "/json?size=1000");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  ASSERT_NE(res.find(http::field::content_length), res.end());
  EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
  EXPECT_EQ(res.body().size(), 1000u);
  EXPECT_TRUE(res.body().starts_with("{\"pad\":\""));
}

TEST_F(SseBackendTest, EchoReportsMethodTargetHeadersAndBodySize) {
  auto res = RunFor(Request(port_, http::verb::post, "/api/echo?x=1", std::string(100'000, 'b'),
                            {{"X-Test", "yes"}}));
  EXPECT_EQ(res.result_int(), 200u);
  const std::string& json = res.body();
  EXPECT_NE(json.find("\"method\":\"POST\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"target\":\"/api/echo?x=1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"x-test\":\"yes\""), std::string::npos) << json;
  EXPECT_EQ(JsonNumber(json, "body_bytes"), 100'000u);
}

TEST_F(SseBackendTest, StatusRouteAnswersWithThatCode) {
  auto res = Get(port_, "/status/503");
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_TRUE(res.body().empty());
}

TEST_F(SseBackendTest, UnknownPathIsNotFoundAndBadParametersAreRejected) {
  EXPECT_EQ(Get(port_, "/nothing-here").result_int(), 404u);
  EXPECT_EQ(Get(port_, "/events?count=many").result_int(), 400u);
  EXPECT_EQ(Get(port_, "/events?framing=gzip").result_int(), 400u);
}

TEST(SseBackendStartTest, RefusesNonLoopbackAddresses) {
  SseBackend backend;
  absl::StatusOr<uint16_t> port = backend.Start("0.0.0.0:0");
  EXPECT_FALSE(port.ok());
}

}  // namespace
}  // namespace apim::testing

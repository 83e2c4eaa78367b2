// How fields cross between HTTP/2 and the exchange's HTTP/1.1 messages, and the per-connection
// budgets that end abusive HTTP/2 connections.
#include "dataplane/codec/http2/http2_fields.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/codec/http2/frame_budget.h"

namespace apim::dataplane {
namespace {

using namespace std::chrono_literals;

std::vector<std::pair<std::string, std::string>> Pairs(const ResponseFields& fields) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < fields.size(); ++i) {
    const nghttp2_nv& nv = fields.data()[i];
    pairs.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                       std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
  }
  return pairs;
}

TEST(Http2FieldsTest, ARequestGetsItsMethodTargetHostAndOneCookie) {
  http::request_header<> request;
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{":method", "POST"},
                                                        {":scheme", "https"},
                                                        {":authority", "api.example.com"},
                                                        {":path", "/orders?x=1"},
                                                        {"cookie", "a=1"},
                                                        {"accept", "text/event-stream"},
                                                        {"cookie", "b=2"}}) {
    AddRequestField(request, name, value);
  }
  EXPECT_EQ(request.method(), http::verb::post);
  EXPECT_EQ(request.target(), "/orders?x=1");
  EXPECT_EQ(request[http::field::host], "api.example.com");
  EXPECT_EQ(request.count(http::field::cookie), 1u);
  EXPECT_EQ(request[http::field::cookie], "a=1; b=2");
  EXPECT_EQ(request[http::field::accept], "text/event-stream");
  EXPECT_EQ(request.count(":scheme"), 0u);
}

TEST(Http2FieldsTest, AHostFieldReplacesTheAuthority) {
  http::request_header<> request;
  AddRequestField(request, ":authority", "a.example");
  AddRequestField(request, "host", "b.example");
  EXPECT_EQ(request.count(http::field::host), 1u);
  EXPECT_EQ(request[http::field::host], "b.example");
}

TEST(Http2FieldsTest, AResponseLosesConnectionSpecificFieldsAndIsLowerCase) {
  http::response<http::empty_body> head(http::status::ok, 11);
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::connection, "keep-alive");
  head.set(http::field::keep_alive, "timeout=5");
  head.set(http::field::transfer_encoding, "chunked");
  head.set(http::field::upgrade, "h2c");
  head.set(http::field::te, "trailers");
  head.set(http::field::content_length, "12");
  head.set("X-Request-Id", "abc");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {":status", "200"}, {"content-type", "text/event-stream"}, {"x-request-id", "abc"}};
  EXPECT_EQ(Pairs(ResponseFields(200, head, /*drop_length=*/true)), expected);
  const auto with_length = Pairs(ResponseFields(200, head, /*drop_length=*/false));
  EXPECT_NE(std::find(with_length.begin(), with_length.end(),
                      std::pair<std::string, std::string>{"content-length", "12"}),
            with_length.end());
}

TEST(FrameBudgetTest, ABurstOfTwiceTheRateThenTheRateItself) {
  const auto start = FrameBudget::Clock::now();
  FrameBudget budget(10, start);
  int taken = 0;
  while (taken < 100 && budget.Take(start)) ++taken;
  EXPECT_EQ(taken, 20);
  EXPECT_FALSE(budget.Take(start + 50ms)) << "half a token has come back, not one";
  EXPECT_TRUE(budget.Take(start + 150ms));
  // Refilled at most to the burst, however long it rested.
  taken = 0;
  while (taken < 100 && budget.Take(start + 1h)) ++taken;
  EXPECT_EQ(taken, 20);
}

}  // namespace
}  // namespace apim::dataplane

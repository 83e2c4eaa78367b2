// How a message changes as it crosses the gateway: hop-by-hop headers stay behind, the
// X-Forwarded-* headers are added, and what asks for a stream or an upgrade is recognised.
#include "dataplane/exchange/http_forwarding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apim::dataplane {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// The names of every header of `fields`, in order (repeats repeated).
std::vector<std::string> Names(const http::fields& fields) {
  std::vector<std::string> names;
  for (const auto& field : fields) names.emplace_back(field.name_string());
  return names;
}

// A client's request head with every kind of hop-by-hop header, and end-to-end ones.
http::fields RequestWithHopByHopHeaders() {
  http::fields fields;
  fields.set(http::field::host, "gw.example.com");
  fields.insert(http::field::connection, "keep-alive, X-Hop");
  fields.insert(http::field::connection, "X-Other-Hop");
  fields.set(http::field::keep_alive, "timeout=5");
  fields.set(http::field::proxy_connection, "keep-alive");
  fields.set(http::field::proxy_authorization, "Basic eA==");
  fields.set(http::field::te, "trailers");
  fields.set(http::field::trailer, "X-Checksum");
  fields.set(http::field::upgrade, "h2c");
  fields.set(http::field::transfer_encoding, "chunked");
  fields.set(http::field::content_length, "10");
  fields.set("X-Hop", "1");
  fields.set("x-other-hop", "2");
  fields.set(http::field::content_type, "application/json");
  fields.insert("X-Repeated", "a");
  fields.insert("X-Repeated", "b");
  return fields;
}

// --- Hop-by-hop headers ---

TEST(CopyEndToEndHeadersTest, CopiesOnlyEndToEndHeadersAndLeavesTheFramingToTheCaller) {
  http::fields to;
  CopyEndToEndHeaders(RequestWithHopByHopHeaders(), to);
  EXPECT_THAT(Names(to), ElementsAre("Host", "Content-Type", "X-Repeated", "X-Repeated"));
  EXPECT_EQ(to[http::field::content_type], "application/json");
}

TEST(CopyEndToEndHeadersTest, DropsTheHeadersNamedInConnectionWhateverTheirCase) {
  http::fields from;
  from.set(http::field::connection, " x-secret ,  X-Trace ");
  from.set("X-Secret", "s");
  from.set("X-TRACE", "t");
  from.set("X-Kept", "k");
  http::fields to;
  CopyEndToEndHeaders(from, to);
  EXPECT_THAT(Names(to), ElementsAre("X-Kept"));
}

TEST(CopyEndToEndHeadersTest, AddsToTheHeadersAlreadyThere) {
  http::fields from;
  from.set("X-A", "from");
  http::fields to;
  to.set("X-A", "to");
  to.set("X-B", "b");
  CopyEndToEndHeaders(from, to);
  EXPECT_EQ(to.count("X-A"), 2u);
  EXPECT_EQ(to["X-B"], "b");
}

TEST(RemoveHopByHopHeadersTest, KeepsTheHostAndTheFraming) {
  http::fields fields = RequestWithHopByHopHeaders();
  RemoveHopByHopHeaders(fields);
  EXPECT_THAT(Names(fields), UnorderedElementsAre("Host", "Transfer-Encoding", "Content-Length",
                                                  "Content-Type", "X-Repeated", "X-Repeated"));
}

TEST(RemoveHopByHopHeadersTest, LeavesAMessageWithoutHopByHopHeadersAlone) {
  http::fields fields;
  fields.set(http::field::host, "gw.example.com");
  fields.set(http::field::accept, "text/event-stream");
  fields.set("Last-Event-ID", "42");
  RemoveHopByHopHeaders(fields);
  EXPECT_THAT(Names(fields), ElementsAre("Host", "Accept", "Last-Event-ID"));
}

TEST(RemoveHopByHopHeadersTest, DoesNotLetConnectionNameTheHost) {
  http::fields fields;
  fields.set(http::field::host, "gw.example.com");
  fields.set(http::field::connection, "Host, Content-Length");
  fields.set(http::field::content_length, "3");
  RemoveHopByHopHeaders(fields);
  EXPECT_THAT(Names(fields), ElementsAre("Host", "Content-Length"));
}

// --- X-Forwarded-* ---

TEST(AddForwardedHeadersTest, StartsXForwardedForWithTheClient) {
  http::fields original;
  original.set(http::field::host, "gw.example.com:8080");
  http::fields upstream;
  AddForwardedHeaders(original, "203.0.113.7", /*secure=*/false, upstream);
  EXPECT_EQ(upstream["X-Forwarded-For"], "203.0.113.7");
  EXPECT_EQ(upstream["X-Forwarded-Proto"], "http");
  EXPECT_EQ(upstream["X-Forwarded-Host"], "gw.example.com:8080");
}

TEST(AddForwardedHeadersTest, AppendsTheClientToTheChainItBrought) {
  http::fields original;
  original.set("X-Forwarded-For", "192.0.2.1, 192.0.2.2");
  http::fields upstream;
  upstream.set("X-Forwarded-For", "192.0.2.1, 192.0.2.2");
  AddForwardedHeaders(original, "203.0.113.7", /*secure=*/false, upstream);
  EXPECT_EQ(upstream.count("X-Forwarded-For"), 1u);
  EXPECT_EQ(upstream["X-Forwarded-For"], "192.0.2.1, 192.0.2.2, 203.0.113.7");
}

TEST(AddForwardedHeadersTest, ReplacesTheClientsOwnClaims) {
  http::fields original;
  original.set(http::field::host, "gw.example.com");
  http::fields upstream;
  upstream.set(http::field::forwarded, "for=10.0.0.1;proto=https");
  upstream.set("X-Real-IP", "10.0.0.1");
  upstream.set("X-Forwarded-Proto", "https");
  upstream.set("X-Forwarded-Host", "internal.example.com");
  AddForwardedHeaders(original, "203.0.113.7", /*secure=*/false, upstream);
  EXPECT_EQ(upstream.count(http::field::forwarded), 0u);
  EXPECT_EQ(upstream.count("X-Real-IP"), 0u);
  EXPECT_EQ(upstream["X-Forwarded-Proto"], "http");
  EXPECT_EQ(upstream.count("X-Forwarded-Host"), 1u);
  EXPECT_EQ(upstream["X-Forwarded-Host"], "gw.example.com");
}

TEST(AddForwardedHeadersTest, SaysHttpsForAClientThatCameOverTls) {
  http::fields upstream;
  AddForwardedHeaders(http::fields{}, "203.0.113.7", /*secure=*/true, upstream);
  EXPECT_EQ(upstream["X-Forwarded-Proto"], "https");
}

TEST(AddForwardedHeadersTest, SetsNoForwardedHostWithoutAHost) {
  http::fields upstream;
  AddForwardedHeaders(http::fields{}, "203.0.113.7", /*secure=*/false, upstream);
  EXPECT_EQ(upstream.count("X-Forwarded-Host"), 0u);
}

// --- Streams and upgrades ---

// A message with one header (none when `value` is empty).
http::fields With(http::field name, std::string_view value) {
  http::fields fields;
  if (!value.empty()) fields.set(name, value);
  return fields;
}

bool IsEventStreamType(std::string_view content_type) {
  return IsEventStream(With(http::field::content_type, content_type));
}

TEST(IsEventStreamTest, RecognisesTheTypeWithParametersAndInAnyCase) {
  EXPECT_TRUE(IsEventStreamType("text/event-stream"));
  EXPECT_TRUE(IsEventStreamType("text/event-stream; charset=utf-8"));
  EXPECT_TRUE(IsEventStreamType("Text/Event-Stream;charset=UTF-8"));
  EXPECT_TRUE(IsEventStreamType(" text/event-stream "));
}

TEST(IsEventStreamTest, RejectsOtherTypes) {
  EXPECT_FALSE(IsEventStreamType(""));
  EXPECT_FALSE(IsEventStreamType("application/json"));
  EXPECT_FALSE(IsEventStreamType("text/event-streams"));
  EXPECT_FALSE(IsEventStreamType("text/plain; note=text/event-stream"));
}

bool AcceptsEventStreamFor(std::string_view accept) {
  return AcceptsEventStream(With(http::field::accept, accept));
}

TEST(AcceptsEventStreamTest, FindsTheTypeAnywhereInTheAcceptList) {
  EXPECT_TRUE(AcceptsEventStreamFor("text/event-stream"));
  EXPECT_TRUE(AcceptsEventStreamFor("application/json, text/event-stream;q=0.5"));
  EXPECT_TRUE(AcceptsEventStreamFor("TEXT/EVENT-STREAM"));
  EXPECT_FALSE(AcceptsEventStreamFor("application/json"));
  EXPECT_FALSE(AcceptsEventStreamFor("*/*"));
  EXPECT_FALSE(AcceptsEventStreamFor("text/event-stream-like"));
  EXPECT_FALSE(AcceptsEventStreamFor(""));
}

TEST(IsWebSocketUpgradeTest, RecognisesAWebSocketUpgradeInAnyCase) {
  EXPECT_TRUE(IsWebSocketUpgrade(With(http::field::upgrade, "websocket")));
  EXPECT_TRUE(IsWebSocketUpgrade(With(http::field::upgrade, "h2c, WebSocket")));
  EXPECT_FALSE(IsWebSocketUpgrade(With(http::field::upgrade, "h2c")));
  EXPECT_FALSE(IsWebSocketUpgrade(With(http::field::upgrade, "")));
}

}  // namespace
}  // namespace apim::dataplane

#include "bench/sse_event_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace apim::bench {
namespace {

// Feeds `pieces` in order and returns every event dispatched.
std::vector<SseEvent> Parse(SseEventParser& parser, const std::vector<std::string_view>& pieces) {
  std::vector<SseEvent> events;
  for (std::string_view piece : pieces) {
    parser.Feed(piece, [&](const SseEvent& event) { events.push_back(event); });
  }
  return events;
}

std::vector<SseEvent> Parse(const std::vector<std::string_view>& pieces) {
  SseEventParser parser;
  return Parse(parser, pieces);
}

TEST(SseEventParserTest, DispatchesAnEventAtABlankLine) {
  std::vector<SseEvent> events = Parse({"id: 1\ndata: hello\n\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "message");
  EXPECT_EQ(events[0].data, "hello");
  EXPECT_EQ(events[0].id, "1");
}

TEST(SseEventParserTest, HoldsAnEventUntilItsBlankLineArrives) {
  SseEventParser parser;
  EXPECT_TRUE(Parse(parser, {"data: hel", "lo\n", "\n"}).size() == 1u);
  EXPECT_TRUE(Parse(parser, {"data: cut off at the end of the stream\n"}).empty());
}

TEST(SseEventParserTest, GivesTheSameEventsWhereverTheBodyIsSplit) {
  const std::string body =
      "id: 7\r\nevent: tick\r\ndata: a\r\ndata: b\r\n\r\n: comment\rdata: c\r\rdata: d\n\n";
  for (size_t split = 0; split <= body.size(); ++split) {
    std::string_view text = body;
    std::vector<SseEvent> events = Parse({text.substr(0, split), text.substr(split)});
    ASSERT_EQ(events.size(), 3u) << "split at " << split;
    EXPECT_EQ(events[0].data, "a\nb") << "split at " << split;
    EXPECT_EQ(events[0].type, "tick");
    EXPECT_EQ(events[0].id, "7");
    EXPECT_EQ(events[1].data, "c") << "split at " << split;
    EXPECT_EQ(events[1].type, "message");
    EXPECT_EQ(events[2].data, "d") << "split at " << split;
  }
}

TEST(SseEventParserTest, ParsesAStreamFedOneByteAtATime) {
  const std::string body = "data: one\r\n\r\ndata: two\r\rdata: three\n\n";
  SseEventParser parser;
  std::vector<SseEvent> events;
  for (char c : body) {
    parser.Feed(std::string_view(&c, 1), [&](const SseEvent& event) { events.push_back(event); });
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].data, "one");
  EXPECT_EQ(events[1].data, "two");
  EXPECT_EQ(events[2].data, "three");
}

TEST(SseEventParserTest, TreatsCrlfSplitAcrossPiecesAsOneLineEnd) {
  // Were the LF taken for a second line end, the blank line would dispatch "x" early.
  std::vector<SseEvent> events = Parse({"data: x\r", "\ndata: y\r", "\n\r", "\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x\ny");
}

TEST(SseEventParserTest, AcceptsLoneCrLineEnds) {
  std::vector<SseEvent> events = Parse({"data: a\r\rdata: b\r\r"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "a");
  EXPECT_EQ(events[1].data, "b");
}

TEST(SseEventParserTest, IgnoresCommentsAndCountsThem) {
  SseEventParser parser;
  std::vector<SseEvent> events = Parse(parser, {":\n\n: heartbeat\n\n:x\ndata: real\n\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "real");
  EXPECT_EQ(parser.comments(), 3u);
}

TEST(SseEventParserTest, FollowsTheFieldRulesOfTheSpec) {
  const std::vector<std::string_view> pieces = {
      "data:no space\n\n",       // the space after the colon is optional
      "data:  two spaces\n\n",   // only one space is removed
      "data\n\n",                // no colon: the whole line is the field, the value is empty
      "retry: 2500\n",           // the reconnection time
      "retry: soon\n",           // not all digits: ignored
      "unknown: field\n",        // ignored
      "event: only-a-type\n\n",  // no data: nothing is dispatched
      "data: after\n\n",
  };
  SseEventParser parser;
  std::vector<SseEvent> events = Parse(parser, pieces);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].data, "no space");
  EXPECT_EQ(events[1].data, " two spaces");
  EXPECT_EQ(events[2].data, "");
  EXPECT_EQ(events[3].data, "after");
  EXPECT_EQ(events[3].type, "message") << "the type is reset even when nothing was dispatched";
  EXPECT_EQ(parser.retry_ms().value_or(0), 2500u);
}

TEST(SseEventParserTest, KeepsTheLastEventIdAcrossEvents) {
  SseEventParser parser;
  std::vector<SseEvent> events =
      Parse(parser, {"id: 5\ndata: a\n\n", "data: b\n\n", "id\ndata: c\n\n"});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "5");
  EXPECT_EQ(events[1].id, "5");
  EXPECT_EQ(events[2].id, "");
  EXPECT_EQ(parser.last_event_id(), "");
}

TEST(SseEventParserTest, SkipsALeadingByteOrderMark) {
  const std::string with_bom =
      "\xEF\xBB\xBF"
      "data: bom\n\n";
  std::vector<SseEvent> events = Parse({with_bom.substr(0, 2), with_bom.substr(2)});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "bom");
}

TEST(SseEventParserTest, FailsOnALineLongerThanTheLimit) {
  SseEventParser parser(16);
  EXPECT_TRUE(parser.Feed("data: 0123", [](const SseEvent&) {}));
  EXPECT_FALSE(parser.Feed("456789abcdef", [](const SseEvent&) {}));
  EXPECT_TRUE(parser.failed());
  EXPECT_FALSE(parser.Feed("\n\n", [](const SseEvent&) {}));
}

TEST(SseEventParserTest, FailsOnEventDataLongerThanTheLimit) {
  SseEventParser parser(15);
  EXPECT_TRUE(parser.Feed("data: 0123456\n", [](const SseEvent&) {}));
  EXPECT_FALSE(parser.Feed("data: 0123456\n", [](const SseEvent&) {}));
}

}  // namespace
}  // namespace apim::bench

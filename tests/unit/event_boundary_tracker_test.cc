// The event-boundary tracker on the WHATWG line rules: boundaries only between events.
#include "dataplane/relay/sse/event_boundary_tracker.h"

#include <gtest/gtest.h>

#include <string>

namespace apim::dataplane::sse {
namespace {

// Feeds `stream` one byte at a time and returns, per prefix length, whether it was a boundary.
std::string BoundariesByteByByte(std::string_view stream) {
  EventBoundaryTracker tracker;
  std::string marks(1, tracker.AtEventBoundary() ? 'B' : '.');
  for (char c : stream) {
    tracker.Feed(std::string_view(&c, 1));
    marks.push_back(tracker.AtEventBoundary() ? 'B' : '.');
  }
  return marks;
}

TEST(EventBoundaryTrackerTest, AStreamStartsAtABoundary) {
  EXPECT_TRUE(EventBoundaryTracker().AtEventBoundary());
}

TEST(EventBoundaryTrackerTest, IsAtABoundaryOnlyAfterTheEmptyLineThatEndsAnEvent) {
  // "data: a\n\n": inside until the second LF.
  EXPECT_EQ(BoundariesByteByByte("data: a\n\n"), "B........B");
}

TEST(EventBoundaryTrackerTest, AcceptsCrAndCrlfLineEndings) {
  EXPECT_EQ(BoundariesByteByByte("id:1\r\r"), "B.....B");
  // The empty line ends at its CR; the LF that completes the CRLF changes nothing.
  EXPECT_EQ(BoundariesByteByByte("id:1\r\n\r\n"), "B......BB");
  EventBoundaryTracker tracker;
  tracker.Feed("data: x\r\n\r\ndata: y\r\n\r\n");
  EXPECT_EQ(tracker.events_completed(), 2u);
}

TEST(EventBoundaryTrackerTest, CommentsAloneDoNotOpenAnEvent) {
  EXPECT_EQ(BoundariesByteByByte(":hi\n"), "B...B");
  EventBoundaryTracker tracker;
  tracker.Feed(":hi\n\n");
  EXPECT_EQ(tracker.events_completed(), 0u);
}

TEST(EventBoundaryTrackerTest, ACommentInsideAnEventKeepsItOpen) {
  EventBoundaryTracker tracker;
  tracker.Feed("data: a\n: keep-alive\n");
  EXPECT_FALSE(tracker.AtEventBoundary());
  tracker.Feed("data: b\n\n");
  EXPECT_TRUE(tracker.AtEventBoundary());
  EXPECT_EQ(tracker.events_completed(), 1u);
}

TEST(EventBoundaryTrackerTest, AnEventSplitAcrossPiecesIsNotABoundaryUntilItEnds) {
  EventBoundaryTracker tracker;
  tracker.Feed("id: 7\nda");
  EXPECT_FALSE(tracker.AtEventBoundary());
  tracker.Feed("ta: half");
  EXPECT_FALSE(tracker.AtEventBoundary());
  tracker.Feed("\n");
  EXPECT_FALSE(tracker.AtEventBoundary()) << "fields pending until the empty line";
  tracker.Feed("\n");
  EXPECT_TRUE(tracker.AtEventBoundary());
}

TEST(EventBoundaryTrackerTest, ALeadingBomIsNotContent) {
  EXPECT_TRUE([] {
    EventBoundaryTracker tracker;
    tracker.Feed("\xEF\xBB\xBF");
    return tracker.AtEventBoundary();
  }());
  EventBoundaryTracker tracker;
  tracker.Feed(
      "\xEF\xBB\xBF"
      "data: a\n\n");
  EXPECT_EQ(tracker.events_completed(), 1u);
  EXPECT_TRUE(tracker.AtEventBoundary());
}

TEST(EventBoundaryTrackerTest, ABomLaterInTheStreamIsContent) {
  EventBoundaryTracker tracker;
  tracker.Feed("data: a\n\n\xEF\xBB\xBF");
  EXPECT_FALSE(tracker.AtEventBoundary());
}

TEST(EventBoundaryTrackerTest, CountsOnlyEventsWithFields) {
  EventBoundaryTracker tracker;
  tracker.Feed("\n\n\ndata: 1\n\nevent: x\ndata: 2\n\n:c\n\n");
  EXPECT_EQ(tracker.events_completed(), 2u);
}

}  // namespace
}  // namespace apim::dataplane::sse

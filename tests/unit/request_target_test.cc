// What the gateway checks and rewrites in a request target before routing, forwarding and logging.
#include "dataplane/exchange/request_target.h"

#include <gtest/gtest.h>

#include <string>

namespace apim::dataplane {
namespace {

TEST(RequestTargetTest, RefusesSegmentsThatDecodeToDotsWhateverTheSeparator) {
  for (const char* target :
       {"/api/../secret", "/api/./x", "/api/..", "/api/..?q=1", "/api/..#x", "/api/..%2fsecret.txt",
        "/api/%2e%2e%2fsecret.txt", "/api/.%2e%2fsecret.txt", "/api/%2E%2E%2Fsecret.txt",
        "/api/..%5csecret", "/api/..%5Csecret", "/api/..\\secret", "/api%2f..%2fsecret", "/%2e/x",
        "/api/%2e"}) {
    EXPECT_FALSE(RefusedTargetReason(target).empty()) << target;
  }
}

TEST(RequestTargetTest, AcceptsDotsInsideNamesAndEncodedSlashesInNames) {
  for (const char* target :
       {"/api/x", "/api/repos/a%2Fb", "/api/.well-known/x", "/api/a..b", "/api/...",
        "/api/file.txt", "/api/x?path=../y", "/", "/api/%2e%2ex", "/api/x/"}) {
    EXPECT_EQ(RefusedTargetReason(target), "") << target;
  }
}

TEST(RequestTargetTest, RefusesBytesOutsidePrintableAscii) {
  EXPECT_FALSE(RefusedTargetReason("/nothing\xff").empty());
  EXPECT_FALSE(RefusedTargetReason(std::string("/a\0b", 4)).empty());
  EXPECT_FALSE(RefusedTargetReason("/a\x7f").empty());
}

TEST(RequestTargetTest, DropsTheFragment) {
  EXPECT_EQ(WithoutFragment("/api/x#frag"), "/api/x");
  EXPECT_EQ(WithoutFragment("/api/x?a=1#frag"), "/api/x?a=1");
  EXPECT_EQ(WithoutFragment("/api/x"), "/api/x");
}

TEST(RequestTargetTest, TakesEverySubscriptionKeyOutOfTheQueryAndKeepsTheRest) {
  std::string target = "/api/x?a=1&subscription-key=first&b=2&Subscription-Key=second";
  EXPECT_EQ(TakeSubscriptionKey(target), "first");
  EXPECT_EQ(target, "/api/x?a=1&b=2");

  target = "/api/x?subscription-key=only";
  EXPECT_EQ(TakeSubscriptionKey(target), "only");
  EXPECT_EQ(target, "/api/x");

  target = "/api/x?a=1&flag&c=";
  EXPECT_EQ(TakeSubscriptionKey(target), "");
  EXPECT_EQ(target, "/api/x?a=1&flag&c=");
}

TEST(RequestTargetTest, RedactsSubscriptionKeysForTheLog) {
  EXPECT_EQ(RedactedTarget("/api/x?subscription-key=secret&a=1&subscription-key=other"),
            "/api/x?subscription-key=redacted&a=1&subscription-key=redacted");
  EXPECT_EQ(RedactedTarget("/api/x?a=subscription-key"), "/api/x?a=subscription-key");
  EXPECT_EQ(RedactedTarget("/api/x"), "/api/x");
}

}  // namespace
}  // namespace apim::dataplane

// The response cache: LRU by bytes, expiry per entry.
#include "dataplane/policy/response_cache.h"

#include <gtest/gtest.h>

namespace apim::dataplane {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

CachedResponse Body(size_t bytes, Clock::time_point expires) {
  CachedResponse response;
  response.body.assign(bytes, 'x');
  response.expires = expires;
  return response;
}

TEST(ResponseCacheTest, ReturnsAFreshEntryAndDropsAnExpiredOne) {
  ResponseCache cache(1 << 20);
  const auto now = Clock::now();
  cache.Store("a", Body(10, now + 10s));
  ASSERT_NE(cache.Lookup("a", now), nullptr);
  EXPECT_EQ(cache.Lookup("a", now)->body.size(), 10u);
  EXPECT_EQ(cache.Lookup("a", now + 11s), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(ResponseCacheTest, EvictsTheLeastRecentlyUsedToStayWithinItsBytes) {
  ResponseCache cache(3000);
  const auto later = Clock::now() + 60s;
  cache.Store("a", Body(900, later));
  cache.Store("b", Body(900, later));
  cache.Store("c", Body(900, later));
  ASSERT_NE(cache.Lookup("a", Clock::now()), nullptr);  // a is now the most recent
  cache.Store("d", Body(900, later));                   // evicts b
  EXPECT_EQ(cache.Lookup("b", Clock::now()), nullptr);
  EXPECT_NE(cache.Lookup("a", Clock::now()), nullptr);
  EXPECT_NE(cache.Lookup("d", Clock::now()), nullptr);
  EXPECT_LE(cache.bytes(), 3000u);
}

TEST(ResponseCacheTest, RefusesAnEntryLargerThanTheWholeBudget) {
  ResponseCache cache(1000);
  cache.Store("big", Body(5000, Clock::now() + 60s));
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(ResponseCacheTest, ReplacingAnEntryKeepsTheByteCountRight) {
  ResponseCache cache(10000);
  const auto later = Clock::now() + 60s;
  cache.Store("a", Body(100, later));
  const size_t once = cache.bytes();
  cache.Store("a", Body(100, later));
  EXPECT_EQ(cache.bytes(), once);
  EXPECT_EQ(cache.entries(), 1u);
}

}  // namespace
}  // namespace apim::dataplane

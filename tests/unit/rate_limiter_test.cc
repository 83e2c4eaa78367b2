// Rate-limit and quota windows stay bounded whatever keys clients send, and no live key is reset
// to make room; a quota's bandwidth is charged after the call and spends the window.
#include "dataplane/policy/rate_limiter.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace apim::dataplane {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiterTest, LimitsEachKeyInItsOwnWindow) {
  Metrics metrics;
  RateLimiter limiter(metrics);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.Acquire({"api#0#", "a", 3, 60s}));
  auto retry = limiter.Acquire({"api#0#", "a", 3, 60s});
  ASSERT_TRUE(retry);
  EXPECT_GE(retry->count(), 59);
  EXPECT_FALSE(limiter.Acquire({"api#0#", "b", 3, 60s}));
  EXPECT_FALSE(limiter.Acquire({"api#1#", "a", 3, 60s})) << "another policy step counts apart";
}

TEST(RateLimiterTest, NewKeysShareAnOverflowWindowOnceTheTableIsFull) {
  Metrics metrics;
  RateLimiter limiter(metrics, /*max_keys=*/10);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.Acquire({"s", "live", 3, 60s}));
  ASSERT_TRUE(limiter.Acquire({"s", "live", 3, 60s}));
  int allowed = 0;
  for (int i = 0; i < 200; ++i) {
    if (!limiter.Acquire({"s", "key-" + std::to_string(i), 3, 60s})) ++allowed;
  }
  // Nine keys get their own window (3 calls each would be allowed, one call is made each), then
  // the rest share one window of 3 calls.
  EXPECT_EQ(allowed, 9 + 3);
  EXPECT_EQ(metrics.rate_limit_keys.load(), 10);
  EXPECT_EQ(metrics.rate_limit_overflow.load(), 200u - 9u);
  EXPECT_TRUE(limiter.Acquire({"s", "live", 3, 60s})) << "a live key's count is never reset";
}

TEST(RateLimiterTest, ExpiredWindowsMakeRoomForNewKeys) {
  Metrics metrics;
  RateLimiter limiter(metrics, /*max_keys=*/4);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(limiter.Acquire({"s", std::to_string(i), 1, 1s}));
  // The windows expire after a second; a new key then takes the room of an expired one. (A full
  // table is searched for expired windows at most once a second, so this waits that long.)
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (metrics.rate_limit_evictions.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    limiter.Acquire({"s", "new", 1, 1s});
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GT(metrics.rate_limit_evictions.load(), 0u);
  EXPECT_FALSE(limiter.Acquire({"s", "another", 1, 1s})) << "a new key has its own window again";
}

TEST(RateLimiterTest, HoldsLongKeysAsDigests) {
  Metrics metrics;
  RateLimiter limiter(metrics);
  const std::string long_key(16 * 1024, 'k');
  EXPECT_FALSE(limiter.Acquire({"s", long_key, 1, 60s}));
  EXPECT_TRUE(limiter.Acquire({"s", long_key, 1, 60s}));
  EXPECT_FALSE(limiter.Acquire({"s", long_key + "x", 1, 60s}));
}

TEST(RateLimiterTest, AQuotasBandwidthIsSpentByTheBytesChargedAfterItsCalls) {
  Metrics metrics;
  RateLimiter limiter(metrics);
  const CallCount quota{"api#2#sub", "", /*calls=*/0, 3600s, /*bytes=*/10 * 1024, true};
  EXPECT_FALSE(limiter.Acquire(quota));
  EXPECT_FALSE(limiter.Acquire(quota)) << "bytes count when a call ends, not when it starts";
  limiter.Charge(quota, 6 * 1024);
  EXPECT_FALSE(limiter.Acquire(quota)) << "6 KiB of 10 KiB spent";
  limiter.Charge(quota, 6 * 1024);  // Two calls running at once may overshoot; never cut.
  auto retry = limiter.Acquire(quota);
  ASSERT_TRUE(retry);
  EXPECT_GE(retry->count(), 3599);
  EXPECT_FALSE(limiter.Acquire({"api#2#other", "", 0, 3600s, 10 * 1024, true}))
      << "another subscription has its own quota";
}

TEST(RateLimiterTest, AQuotaOfCallsAndBandwidthIsSpentByEither) {
  Metrics metrics;
  RateLimiter limiter(metrics);
  const CallCount quota{"q", "key", /*calls=*/2, 60s, /*bytes=*/1024, true};
  EXPECT_FALSE(limiter.Acquire(quota));
  EXPECT_FALSE(limiter.Acquire(quota));
  EXPECT_TRUE(limiter.Acquire(quota)) << "calls spent";
  const CallCount by_bytes{"q", "other", 2, 60s, 1024, true};
  EXPECT_FALSE(limiter.Acquire(by_bytes));
  limiter.Charge(by_bytes, 1024);
  EXPECT_TRUE(limiter.Acquire(by_bytes)) << "bytes spent with a call left";
}

TEST(RateLimiterTest, ChargingASaturatedWindowDoesNotWrapAround) {
  Metrics metrics;
  RateLimiter limiter(metrics);
  const CallCount quota{"q", "", 0, 60s, 1024, true};
  limiter.Charge(quota, std::numeric_limits<uint64_t>::max());
  limiter.Charge(quota, 2048);
  EXPECT_TRUE(limiter.Acquire(quota));
}

}  // namespace
}  // namespace apim::dataplane

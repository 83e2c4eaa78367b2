#pragma once
// Fixed-window counters for rate-limit, rate-limit-by-key, quota and quota-by-key, shared by the
// worker's threads. Limits are per worker: N workers allow up to N times the calls (unless they
// count on a shared-state server, SharedCounters).
//
// Counter keys come from requests (a header, a query parameter), so the table is bounded: a key
// is stored as a 128-bit digest whatever its length, a window that has expired is dropped when
// room is needed (and once a minute), and at most `max_keys` windows are kept. When the table is
// full of live windows, new keys of one policy step share that step's overflow window: they are
// limited together, and no live key's count is ever reset to make room.

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "dataplane/admin/metrics.h"

namespace apim::dataplane {

// One call to count against a rate-limit or quota step, as RateLimiter::Acquire takes it; the
// steps of a request are gathered like this when they are counted on a shared-state server
// instead. A quota's bandwidth is charged when the exchange ends (Charge).
struct CallCount {
  std::string scope;   // The policy step and the subscription it counts for.
  std::string key;     // The by-key steps' counter key; empty for rate-limit and quota.
  uint32_t calls = 0;  // Calls a window admits; 0: not limited (a quota of bandwidth only).
  std::chrono::seconds period{0};
  uint64_t bytes = 0;  // A quota's bandwidth: bytes a window admits; 0: not limited.
  bool quota = false;  // Spent: 403 quota-exceeded, not 429.
};

class RateLimiter {
 public:
  static constexpr size_t kDefaultMaxKeys = 100'000;

  explicit RateLimiter(Metrics& metrics, size_t max_keys = kDefaultMaxKeys);

  // Counts `call` in its window. Nothing if it is allowed, else (its calls or its bytes are
  // spent; nothing is counted) the seconds until the window renews, for Retry-After.
  std::optional<std::chrono::seconds> Acquire(const CallCount& call);

  // Adds `bytes` to the window of a quota `call` was admitted under: the current window, since
  // a long response ends when it ends.
  void Charge(const CallCount& call, uint64_t bytes);

 private:
  using Clock = std::chrono::steady_clock;
  using Digest = std::array<unsigned char, 16>;
  struct DigestHash {
    size_t operator()(const Digest& digest) const;
  };
  struct Window {
    Clock::time_point start;
    Clock::duration period{};  // Zero until the window is first used: then it is expired.
    uint32_t count = 0;
    uint64_t bytes = 0;
    bool Expired(Clock::time_point now) const { return now - start >= period; }
  };
  using Table = std::unordered_map<Digest, Window, DigestHash>;

  static Digest DigestOf(const CallCount& call);
  // The current window of `call`, started afresh when it has expired; REQUIRES: mu_ held.
  Window& CurrentWindow(const Digest& digest, const CallCount& call, Clock::time_point now);
  // The window of a key seen for the first time: its own, or the scope's overflow window.
  Window& NewWindow(const Digest& digest, std::string_view scope, Clock::time_point now);
  // Drops expired windows; REQUIRES: mu_ held.
  void DropExpired(Clock::time_point now);

  Metrics& metrics_;
  const size_t max_keys_;
  std::mutex mu_;
  Table windows_;
  Table overflow_;  // One window per scope, used while windows_ is full.
  Clock::time_point last_sweep_{};
  bool overflowing_ = false;  // For one log line per change.
};

}  // namespace apim::dataplane

#pragma once
// Fixed-window counters for rate-limit and rate-limit-by-key, shared by the worker's threads.
// Limits are per worker: N workers allow up to N times the calls.
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

// One call to count against a rate-limit step, as RateLimiter::Acquire takes it; the steps of a
// request are gathered like this when they are counted on a shared-state server instead.
struct CallCount {
  std::string scope;  // The policy step and the subscription it counts for.
  std::string key;    // rate-limit-by-key's counter key; empty for rate-limit.
  uint32_t calls = 0;
  std::chrono::seconds period{0};
};

class RateLimiter {
 public:
  static constexpr size_t kDefaultMaxKeys = 100'000;

  explicit RateLimiter(Metrics& metrics, size_t max_keys = kDefaultMaxKeys);

  // Counts a call of `scope` (a policy step, with the subscription it counts for) under `key`
  // (the counter key; empty for rate-limit). Nothing if it is allowed, else the seconds until
  // the window renews (for Retry-After).
  std::optional<std::chrono::seconds> Acquire(std::string_view scope, std::string_view key,
                                              uint32_t calls, std::chrono::seconds period);

 private:
  using Clock = std::chrono::steady_clock;
  using Digest = std::array<unsigned char, 16>;
  struct DigestHash {
    size_t operator()(const Digest& digest) const;
  };
  struct Window {
    Clock::time_point start;
    Clock::duration period{};
    uint32_t count = 0;
    bool Expired(Clock::time_point now) const { return now - start >= period; }
  };
  using Table = std::unordered_map<Digest, Window, DigestHash>;

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

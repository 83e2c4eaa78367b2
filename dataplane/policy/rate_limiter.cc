#include "dataplane/policy/rate_limiter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "common/sha256.h"

namespace apim::dataplane {
namespace {

// How often expired windows are dropped when nothing asks for room.
constexpr std::chrono::seconds kSweepInterval(60);
// A full table of live windows is searched for expired ones at most this often.
constexpr std::chrono::seconds kFullSweepInterval(1);

template <size_t N>
std::array<unsigned char, 16> Truncated(const std::array<unsigned char, N>& digest) {
  std::array<unsigned char, 16> truncated;
  std::memcpy(truncated.data(), digest.data(), truncated.size());
  return truncated;
}

}  // namespace

size_t RateLimiter::DigestHash::operator()(const Digest& digest) const {
  size_t hash;
  std::memcpy(&hash, digest.data(), sizeof hash);  // A digest is uniform already.
  return hash;
}

RateLimiter::RateLimiter(Metrics& metrics, size_t max_keys)
    : metrics_(metrics), max_keys_(std::max<size_t>(1, max_keys)) {}

std::optional<std::chrono::seconds> RateLimiter::Acquire(const CallCount& call) {
  const Digest digest = DigestOf(call);
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  Window& window = CurrentWindow(digest, call, now);
  if ((call.calls > 0 && window.count >= call.calls) ||
      (call.bytes > 0 && window.bytes >= call.bytes)) {
    auto left = std::chrono::ceil<std::chrono::seconds>(window.start + window.period - now);
    return std::max(left, std::chrono::seconds(1));
  }
  ++window.count;
  return std::nullopt;
}

void RateLimiter::Charge(const CallCount& call, uint64_t bytes) {
  const Digest digest = DigestOf(call);
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  Window& window = CurrentWindow(digest, call, now);
  constexpr uint64_t kMost = std::numeric_limits<uint64_t>::max();
  window.bytes = bytes > kMost - window.bytes ? kMost : window.bytes + bytes;
}

RateLimiter::Digest RateLimiter::DigestOf(const CallCount& call) {
  std::string scoped_key;
  scoped_key.reserve(call.scope.size() + 1 + call.key.size());
  scoped_key.append(call.scope).append(1, '\0').append(call.key);
  return Truncated(Sha256(scoped_key));
}

RateLimiter::Window& RateLimiter::CurrentWindow(const Digest& digest, const CallCount& call,
                                                Clock::time_point now) {
  if (now - last_sweep_ >= kSweepInterval) DropExpired(now);
  auto found = windows_.find(digest);
  Window& window = found != windows_.end() ? found->second : NewWindow(digest, call.scope, now);
  if (window.Expired(now)) window = Window{now, call.period};
  return window;
}

RateLimiter::Window& RateLimiter::NewWindow(const Digest& digest, std::string_view scope,
                                            Clock::time_point now) {
  if (windows_.size() >= max_keys_ && now - last_sweep_ >= kFullSweepInterval) {
    DropExpired(now);
  }
  if (windows_.size() < max_keys_) {
    Window& window = windows_[digest];
    metrics_.rate_limit_keys = static_cast<int64_t>(windows_.size());
    return window;
  }
  ++metrics_.rate_limit_overflow;
  if (!overflowing_) {
    overflowing_ = true;
    spdlog::warn(
        "rate-limit-by-key: {} live counter keys (--rate-limit-max-keys); new keys now share one "
        "window per policy",
        windows_.size());
  }
  return overflow_[Truncated(Sha256(scope))];
}

void RateLimiter::DropExpired(Clock::time_point now) {
  size_t dropped =
      std::erase_if(windows_, [&](const auto& entry) { return entry.second.Expired(now); });
  std::erase_if(overflow_, [&](const auto& entry) { return entry.second.Expired(now); });
  last_sweep_ = now;
  metrics_.rate_limit_evictions += dropped;
  metrics_.rate_limit_keys = static_cast<int64_t>(windows_.size());
  if (overflowing_ && windows_.size() < max_keys_) {
    overflowing_ = false;
    spdlog::info(
        "rate-limit-by-key: expired windows dropped, {} counter keys; new keys get "
        "their own window again",
        windows_.size());
  }
}

}  // namespace apim::dataplane

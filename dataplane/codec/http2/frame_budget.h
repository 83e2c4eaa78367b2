#pragma once
// A token bucket per connection for what a client may make the gateway do per second (stream
// resets, control frames): `rate` per second, up to twice as many at once. The budget of a
// connection whose client misbehaves runs out; an ordinary browser never comes near it.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace apim::dataplane {

class FrameBudget {
 public:
  using Clock = std::chrono::steady_clock;

  explicit FrameBudget(uint32_t rate, Clock::time_point now = Clock::now())
      : rate_(rate), tokens_(2.0 * rate), last_(now) {}

  // Takes one; false once the budget is spent (and from then on, until it refills).
  bool Take(Clock::time_point now = Clock::now()) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(2.0 * rate_, tokens_ + elapsed * rate_);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace apim::dataplane

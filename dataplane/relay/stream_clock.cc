#include "dataplane/relay/stream_clock.h"

#include <algorithm>

#include "common/str_cat.h"

namespace apim::dataplane {

namespace {

int64_t Seconds(StreamClock::Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

}  // namespace

StreamClock::StreamClock(boost::asio::ip::tcp::socket& upstream, Downstream& downstream,
                         Settings settings, std::unordered_set<StreamClock*>& registry)
    : upstream_(upstream),
      downstream_(downstream),
      settings_(std::move(settings)),
      registry_(registry),
      timer_(upstream.get_executor()),
      state_(std::make_shared<State>()) {
  state_->start = state_->last_activity = state_->last_heartbeat_wake = Clock::now();
  registry_.insert(this);
  Clock::time_point next = state_->start + settings_.idle_timeout;
  if (settings_.heartbeat_interval.count() > 0) {
    next = std::min(next, state_->start + settings_.heartbeat_interval);
  }
  if (settings_.max_duration.count() > 0) {
    next = std::min(next, state_->start + settings_.max_duration);
  }
  Arm(next);
}

StreamClock::~StreamClock() {
  registry_.erase(this);
  state_->armed = false;
  timer_.cancel();
}

void StreamClock::Arm(Clock::time_point when) {
  timer_.expires_at(when);
  // The handler holds the shared state and checks it is still armed: it may run after the
  // relay (and this object) is gone, and then does nothing.
  timer_.async_wait([this, state = state_](const boost::system::error_code& error) {
    if (error || !state->armed) return;
    OnTimer();
  });
}

void StreamClock::OnTimer() {
  const Clock::time_point now = Clock::now();
  boost::system::error_code ignored;
  auto cut = [&](std::string reason) {
    state_->cut_reason = std::move(reason);
    upstream_.close(ignored);
    downstream_.Abort();
  };
  if (settings_.max_duration.count() > 0 && now >= state_->start + settings_.max_duration) {
    return cut(StrCat("the response reached the ", Seconds(settings_.max_duration),
                      " s limit of tier \"", settings_.tier, "\""));
  }
  const Clock::time_point idle_at = state_->last_activity + settings_.idle_timeout;
  if (now >= idle_at) {
    return cut(StrCat("no traffic for ", Seconds(settings_.idle_timeout), " s (idle timeout)"));
  }
  Clock::time_point next = idle_at;
  if (settings_.heartbeat_interval.count() > 0) {
    // Due an interval after the last traffic, or after the last wake-up for one (the relay may
    // have been mid-event and unable to write it).
    const Clock::time_point heartbeat_at =
        std::max(state_->last_activity, state_->last_heartbeat_wake) + settings_.heartbeat_interval;
    if (now >= heartbeat_at) {
      state_->heartbeat_due = true;
      state_->last_heartbeat_wake = now;
      upstream_.cancel(ignored);
      next = std::min(next, now + settings_.heartbeat_interval);
    } else {
      next = std::min(next, heartbeat_at);
    }
  }
  if (settings_.max_duration.count() > 0) {
    next = std::min(next, state_->start + settings_.max_duration);
  }
  Arm(next);
}

bool StreamClock::TakeHeartbeatDue() {
  const bool due = state_->heartbeat_due;
  state_->heartbeat_due = false;
  return due;
}

void StreamClock::Drain() {
  state_->draining = true;
  boost::system::error_code ignored;
  upstream_.cancel(ignored);
}

}  // namespace apim::dataplane

#pragma once
// Keeps time for one response while its body is relayed, with a deadline that is re-armed only
// when it is reached (relaying a piece just notes the time). The deadlines of a thread's relays
// share one timer (a queue ordered by deadline): an open stream holds no timer and no pending
// wait of its own.
//  - heartbeat due: the stream has been quiet for the heartbeat interval. The relay's wait for
//    the backend is cancelled so the relay can write a comment, if it is between events.
//  - cut: the response ran past its tier's max duration, or nothing moved in either direction for
//    the idle timeout. The backend socket is closed, the response aborted and the reason recorded.
//  - drain: the worker is shutting down; the relay ends the stream at the next event boundary.

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "dataplane/exchange/downstream.h"

namespace apim::dataplane {

class StreamClock {
 public:
  using Clock = std::chrono::steady_clock;
  struct Settings {
    Clock::duration heartbeat_interval{0};  // 0: no heartbeats.
    Clock::duration idle_timeout{std::chrono::seconds(240)};
    Clock::duration max_duration{0};  // 0: no limit.
    std::string_view tier;            // Named in the cut reason; outlives the clock.
  };

  // Registers in `registry` (the thread's open relays, so a drain can reach them).
  StreamClock(boost::asio::ip::tcp::socket& upstream, Downstream& downstream, Settings settings,
              std::unordered_set<StreamClock*>& registry);
  ~StreamClock();
  StreamClock(const StreamClock&) = delete;
  StreamClock& operator=(const StreamClock&) = delete;

  // Bytes moved (either way): the heartbeat and idle clocks start again.
  void Activity() { last_activity_ = Clock::now(); }
  // True once per wake-up for a heartbeat (the wait for the backend was cancelled for it).
  bool TakeHeartbeatDue();
  // Asks the relay to end the stream at its next event boundary (the wait for the backend is
  // cancelled).
  void Drain();
  bool draining() const { return draining_; }
  // Why the response was cut, or empty.
  const std::string& cut_reason() const { return cut_reason_; }

  // The thread's deadlines (one per registry), in stream_clock.cc.
  class Queue;

 private:
  void Arm(Clock::time_point when);
  void OnTimer();

  boost::asio::ip::tcp::socket& upstream_;
  Downstream& downstream_;
  Settings settings_;
  std::unordered_set<StreamClock*>& registry_;
  std::shared_ptr<Queue> queue_;
  Clock::time_point due_;  // When OnTimer is due, while queued.
  size_t queued_at_;       // Index in the queue's heap, or kNotQueued.
  bool heartbeat_due_ = false;
  bool draining_ = false;
  std::string cut_reason_;
  Clock::time_point start_;
  Clock::time_point last_activity_;
  Clock::time_point last_heartbeat_wake_;
};

}  // namespace apim::dataplane

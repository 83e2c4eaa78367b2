#include "dataplane/relay/stream_clock.h"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <unordered_map>
#include <vector>

#include "common/str_cat.h"

namespace apim::dataplane {

namespace {

int64_t Seconds(StreamClock::Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

}  // namespace

// A binary min-heap of the thread's clocks by deadline, and one timer set to the earliest. The
// timer's pending wait holds the queue, as does each clock in it; the thread finds it through a
// weak reference, so it goes away once no clock and no wait is left.
class StreamClock::Queue : public std::enable_shared_from_this<Queue> {
 public:
  static constexpr size_t kNotQueued = static_cast<size_t>(-1);

  explicit Queue(const boost::asio::any_io_executor& executor) : timer_(executor) {}

  // The queue of `registry`'s thread, made on first use.
  static std::shared_ptr<Queue> For(const void* registry,
                                    const boost::asio::any_io_executor& executor) {
    thread_local std::unordered_map<const void*, std::weak_ptr<Queue>> queues;
    std::weak_ptr<Queue>& slot = queues[registry];
    std::shared_ptr<Queue> queue = slot.lock();
    if (!queue) {
      queue = std::make_shared<Queue>(executor);
      slot = queue;
    }
    return queue;
  }

  void Add(StreamClock* clock) {
    clock->queued_at_ = heap_.size();
    heap_.push_back(clock);
    Up(clock->queued_at_);
    Schedule();
  }

  void Remove(StreamClock* clock) {
    const size_t at = clock->queued_at_;
    if (at == kNotQueued) return;
    clock->queued_at_ = kNotQueued;
    StreamClock* last = heap_.back();
    heap_.pop_back();
    if (last != clock) {
      heap_[at] = last;
      last->queued_at_ = at;
      Down(Up(at));
    }
    if (heap_.empty()) {
      // The wait that would wake for nobody is cancelled, so it lets go of the queue.
      ++generation_;
      armed_ = Clock::time_point::max();
      timer_.cancel();
      std::vector<StreamClock*>().swap(heap_);
    }
  }

 private:
  bool Before(size_t a, size_t b) const { return heap_[a]->due_ < heap_[b]->due_; }
  void Swap(size_t a, size_t b) {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->queued_at_ = a;
    heap_[b]->queued_at_ = b;
  }
  size_t Up(size_t at) {
    while (at > 0 && Before(at, (at - 1) / 2)) {
      Swap(at, (at - 1) / 2);
      at = (at - 1) / 2;
    }
    return at;
  }
  void Down(size_t at) {
    for (;;) {
      size_t least = at;
      for (size_t child = 2 * at + 1; child <= 2 * at + 2 && child < heap_.size(); ++child) {
        if (Before(child, least)) least = child;
      }
      if (least == at) return;
      Swap(at, least);
      at = least;
    }
  }

  // Sets the timer to the earliest deadline unless it already wakes up before it (a wake-up
  // that finds nothing due only sets it again).
  void Schedule() {
    if (heap_.empty()) return;
    const Clock::time_point first = heap_.front()->due_;
    if (armed_ <= first) return;
    armed_ = first;
    timer_.expires_at(first);  // A wait set earlier is cancelled: its handler is out of date.
    const uint64_t generation = ++generation_;
    timer_.async_wait(
        [queue = shared_from_this(), generation](const boost::system::error_code& error) {
          if (generation != queue->generation_) return;
          queue->armed_ = Clock::time_point::max();
          if (!error) queue->Fire();
        });
  }

  void Fire() {
    const Clock::time_point now = Clock::now();
    while (!heap_.empty() && heap_.front()->due_ <= now) {
      StreamClock* clock = heap_.front();
      Remove(clock);
      clock->OnTimer();  // Queues it again, unless it cut the response.
    }
    Schedule();
  }

  std::vector<StreamClock*> heap_;
  boost::asio::steady_timer timer_;
  Clock::time_point armed_ = Clock::time_point::max();  // The pending wait's expiry, if any.
  uint64_t generation_ = 0;                             // Of the pending wait.
};

StreamClock::StreamClock(boost::asio::ip::tcp::socket& upstream, Downstream& downstream,
                         Settings settings, std::unordered_set<StreamClock*>& registry)
    : upstream_(upstream),
      downstream_(downstream),
      settings_(settings),
      registry_(registry),
      queue_(Queue::For(&registry, upstream.get_executor())),
      queued_at_(Queue::kNotQueued) {
  start_ = last_activity_ = last_heartbeat_wake_ = Clock::now();
  registry_.insert(this);
  Clock::time_point next = start_ + settings_.idle_timeout;
  if (settings_.heartbeat_interval.count() > 0) {
    next = std::min(next, start_ + settings_.heartbeat_interval);
  }
  if (settings_.max_duration.count() > 0) {
    next = std::min(next, start_ + settings_.max_duration);
  }
  Arm(next);
}

StreamClock::~StreamClock() {
  registry_.erase(this);
  queue_->Remove(this);
}

void StreamClock::Arm(Clock::time_point when) {
  due_ = when;
  queue_->Add(this);
}

void StreamClock::OnTimer() {
  const Clock::time_point now = Clock::now();
  boost::system::error_code ignored;
  auto cut = [&](std::string reason) {
    cut_reason_ = std::move(reason);
    upstream_.close(ignored);
    downstream_.Abort();
  };
  if (settings_.max_duration.count() > 0 && now >= start_ + settings_.max_duration) {
    return cut(StrCat("the response reached the ", Seconds(settings_.max_duration),
                      " s limit of tier \"", settings_.tier, "\""));
  }
  const Clock::time_point idle_at = last_activity_ + settings_.idle_timeout;
  if (now >= idle_at) {
    return cut(StrCat("no traffic for ", Seconds(settings_.idle_timeout), " s (idle timeout)"));
  }
  Clock::time_point next = idle_at;
  if (settings_.heartbeat_interval.count() > 0) {
    // Due an interval after the last traffic, or after the last wake-up for one (the relay may
    // have been mid-event and unable to write it).
    const Clock::time_point heartbeat_at =
        std::max(last_activity_, last_heartbeat_wake_) + settings_.heartbeat_interval;
    if (now >= heartbeat_at) {
      heartbeat_due_ = true;
      last_heartbeat_wake_ = now;
      upstream_.cancel(ignored);
      next = std::min(next, now + settings_.heartbeat_interval);
    } else {
      next = std::min(next, heartbeat_at);
    }
  }
  if (settings_.max_duration.count() > 0) {
    next = std::min(next, start_ + settings_.max_duration);
  }
  Arm(next);
}

bool StreamClock::TakeHeartbeatDue() {
  const bool due = heartbeat_due_;
  heartbeat_due_ = false;
  return due;
}

void StreamClock::Drain() {
  draining_ = true;
  boost::system::error_code ignored;
  upstream_.cancel(ignored);
}

}  // namespace apim::dataplane

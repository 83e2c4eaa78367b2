#pragma once
// The worker-wide budget for bodies held whole in memory (buffer-response, buffer-request-body,
// validate-content). Each buffered body is also limited on its own; the budget bounds their sum,
// so many clients that never read a large buffered response (or trickle large uploads) cannot
// take the worker's memory. Past the budget a response is streamed instead of buffered and a
// request that must be buffered is refused (503).

#include <atomic>
#include <cstddef>

#include "dataplane/admin/metrics.h"

namespace apim::dataplane {

class BufferBudget {
 public:
  static constexpr size_t kDefaultBytes = 256 * 1024 * 1024;

  BufferBudget(size_t bytes, Metrics& metrics) : bytes_(bytes), metrics_(metrics) {}

  // Takes `bytes` from the budget; false, taking nothing, when they do not fit. Thread-safe.
  bool TryTake(size_t bytes);
  void Give(size_t bytes);
  // Logs once when the budget first refuses and once when it has room again.
  void NoteRefusal();

 private:
  const size_t bytes_;
  Metrics& metrics_;
  std::atomic<size_t> used_{0};
  std::atomic<bool> exhausted_{false};
};

// The share of the budget one body holds, given back when it is destroyed.
class BufferReservation {
 public:
  explicit BufferReservation(BufferBudget& budget) : budget_(&budget) {}
  ~BufferReservation() { Reset(); }
  BufferReservation(BufferReservation&& other) noexcept
      : budget_(other.budget_), held_(other.held_) {
    other.held_ = 0;
  }
  BufferReservation& operator=(BufferReservation&&) = delete;
  BufferReservation(const BufferReservation&) = delete;

  // Makes the reservation at least `total` bytes; false (holding what it held) when the budget
  // has no room.
  bool GrowTo(size_t total);
  void Reset();

 private:
  BufferBudget* budget_;
  size_t held_ = 0;
};

}  // namespace apim::dataplane

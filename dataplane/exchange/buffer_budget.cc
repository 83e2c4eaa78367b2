#include "dataplane/exchange/buffer_budget.h"

#include <spdlog/spdlog.h>

namespace apim::dataplane {

bool BufferBudget::TryTake(size_t bytes) {
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > bytes_ - used) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  metrics_.buffered_bytes += static_cast<int64_t>(bytes);
  if (exhausted_.load(std::memory_order_relaxed) && exhausted_.exchange(false)) {
    spdlog::info("buffer budget: room again ({} of {} bytes held)", used + bytes, bytes_);
  }
  return true;
}

void BufferBudget::Give(size_t bytes) {
  used_.fetch_sub(bytes, std::memory_order_relaxed);
  metrics_.buffered_bytes -= static_cast<int64_t>(bytes);
}

void BufferBudget::NoteRefusal() {
  if (!exhausted_.exchange(true)) {
    spdlog::warn(
        "buffer budget of {} bytes (--buffer-budget-bytes) is full: responses are streamed "
        "instead of buffered, requests that need buffering get 503",
        bytes_);
  }
}

bool BufferReservation::GrowTo(size_t total) {
  if (total <= held_) return true;
  if (!budget_->TryTake(total - held_)) return false;
  held_ = total;
  return true;
}

void BufferReservation::Reset() {
  if (held_ > 0) budget_->Give(held_);
  held_ = 0;
}

}  // namespace apim::dataplane

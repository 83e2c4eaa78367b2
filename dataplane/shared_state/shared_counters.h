#pragma once
// Limits that hold across every worker of a gateway, on its Redis server (the gateway's
// shared-state setting, or the worker's --redis flag): the calls of rate-limit and
// rate-limit-by-key, the calls and bytes of quota and quota-by-key, and the open streams of a
// subscription (max_concurrent_streams). One per worker thread, each with its own connection, so no
// request waits for another thread. Without a server configured the worker counts alone
// (RateLimiter, SubscriptionStreams).
//
// What one request asks is checked and counted in one round trip, by a Lua script (atomic on the
// server): if any limit is spent, nothing is counted. A quota's bytes are added when the
// exchange ends, without waiting for a reply. A stream holds a lease on one of its
// subscription's slots: a member of a sorted set scored by its expiry (30 s), refreshed every 10 s
// while the stream lives and removed when it ends, so the slots of a worker that dies come back
// within 30 s. While the server is unreachable or slower than the bound, the worker counts
// locally (fail open) or refuses with 503 (--shared-state-fail-closed).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/admin/metrics.h"
#include "dataplane/policy/policy_runtime.h"
#include "dataplane/policy/rate_limiter.h"
#include "dataplane/shared_state/redis_connection.h"
#include "dataplane/shared_state/redis_settings.h"

namespace apim::dataplane {

// What a request asks of the limits before it is forwarded.
struct LimitRequest {
  std::vector<CallCount> calls;     // Its rate-limit and quota steps, in order.
  std::string stream_subscription;  // A stream of this subscription needs a slot...
  uint32_t max_streams = 0;         // ...of this many (0: no slot needed).
  bool empty() const { return calls.empty() && max_streams == 0; }
};

// The leases a thread holds, shared with the slots that hold them, so a slot can give its lease
// back even when it outlives the thread's SharedCounters (as a connection's frame can, when the
// worker stops).
class LeaseBook;

// One stream counted against a subscription's max_concurrent_streams for as long as it lives:
// on this worker (SubscriptionStreams) or as a lease on the shared-state server.
class SubscriptionStreamSlot {
 public:
  SubscriptionStreamSlot() = default;
  SubscriptionStreamSlot(SubscriptionStreams& streams, std::string subscription)
      : streams_(&streams), subscription_(std::move(subscription)) {}
  SubscriptionStreamSlot(std::shared_ptr<LeaseBook> book, uint64_t lease)
      : book_(std::move(book)), lease_(lease) {}
  SubscriptionStreamSlot(SubscriptionStreamSlot&& other) noexcept { *this = std::move(other); }
  SubscriptionStreamSlot& operator=(SubscriptionStreamSlot&& other) noexcept {
    std::swap(streams_, other.streams_);
    std::swap(subscription_, other.subscription_);
    std::swap(book_, other.book_);
    std::swap(lease_, other.lease_);
    return *this;
  }
  ~SubscriptionStreamSlot();

 private:
  SubscriptionStreams* streams_ = nullptr;
  std::string subscription_;
  std::shared_ptr<LeaseBook> book_;
  uint64_t lease_ = 0;
};

struct LimitVerdict {
  enum class Outcome { kAdmitted, kCallsSpent, kQuotaSpent, kStreamsFull, kUnavailable };
  Outcome outcome = Outcome::kAdmitted;
  std::chrono::seconds retry_after{0};  // k*Spent: until the spent window renews.
  std::string unavailable;              // kUnavailable: why the server could not count.
  SubscriptionStreamSlot slot;          // kAdmitted with a stream slot asked for.
};

struct SharedStateOptions {
  // --redis and its files: wins over the snapshot's setting.
  std::optional<RedisSettings> redis;
  std::chrono::milliseconds timeout{50};
  bool fail_closed = false;
};

// Whether the worker's threads are connected, for the metric and one log line per change.
class SharedStateStatus {
 public:
  SharedStateStatus(Metrics& metrics, bool fail_closed)
      : metrics_(metrics), fail_closed_(fail_closed) {}
  void ConnectionAdded();
  void ConnectionRemoved(bool was_up);
  void ConnectionUp(const std::string& server);
  void ConnectionDown(bool was_up, const std::string& server, const std::string& why);

 private:
  // REQUIRES: mu_ held.
  bool UpdateMetrics();
  Metrics& metrics_;
  const bool fail_closed_;
  std::mutex mu_;
  int connections_ = 0;
  int up_ = 0;
  std::optional<bool> available_;  // As last logged.
};

class SharedCounters {
 public:
  static constexpr std::chrono::seconds kLeaseTtl{30};
  static constexpr std::chrono::seconds kLeaseRefresh{10};

  SharedCounters(boost::asio::any_io_executor executor, const SharedStateOptions& options,
                 RateLimiter& local_calls, SubscriptionStreams& local_streams,
                 SharedStateStatus& status, Metrics& metrics);
  ~SharedCounters();

  // Whether limits are counted on a server for requests under a snapshot with
  // `snapshot_setting` (its compiled shared-state setting, null when none); (re)connects when
  // the setting changed.
  bool Shared(const std::shared_ptr<const RedisSettings>& snapshot_setting);

  // Checks and counts what `request` asks (REQUIRES: Shared() just said true).
  boost::asio::awaitable<LimitVerdict> Admit(const LimitRequest& request);

  // Adds an ended exchange's `bytes` to the quotas it was admitted under: on the server when
  // connected (without waiting), else locally.
  void Charge(const std::vector<CallCount>& quotas, uint64_t bytes);

 private:
  LimitVerdict AdmitLocally(const LimitRequest& request);
  void Connect(const RedisSettings& settings);

  boost::asio::any_io_executor executor_;
  const SharedStateOptions& options_;
  RateLimiter& local_calls_;
  SubscriptionStreams& local_streams_;
  SharedStateStatus& status_;
  Metrics& metrics_;
  // The setting connection_ was made for (held, so a new one cannot reuse its address).
  std::shared_ptr<const RedisSettings> connected_setting_;
  std::shared_ptr<RedisConnection> connection_;
  bool connection_up_ = false;  // As last reported to status_.
  std::shared_ptr<LeaseBook> leases_;
};

}  // namespace apim::dataplane

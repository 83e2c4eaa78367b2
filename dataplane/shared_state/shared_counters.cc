#include "dataplane/shared_state/shared_counters.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <random>

#include "common/sha256.h"
#include "common/str_cat.h"
#include "dataplane/exchange/exchange_io.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
using asio::awaitable;

// KEYS: a window per rate-limit or quota step (a hash: calls, bytes), then, when a stream needs
// a slot, its subscription's lease set. ARGV: the number of windows n; for each, the calls and
// the bytes it admits (0: not limited) and its length (ms); then the lease's member, the
// subscription's slots and the lease's time to live (ms).
// Returns {0, 0} when admitted (then every window counts the call and the lease is taken), {i, ms}
// when window i (1-based) is spent, ms until it renews, and {-1, 0} when the subscription's slots
// are all taken (then nothing is counted).
constexpr std::string_view kAdmitScript = R"lua(
local n = tonumber(ARGV[1])
local fresh = {}
for i = 1, n do
  local at = 3 * i - 1
  local used = redis.call('HMGET', KEYS[i], 'calls', 'bytes')
  local calls, bytes = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  if (calls > 0 and tonumber(used[1] or '0') >= calls) or
     (bytes > 0 and tonumber(used[2] or '0') >= bytes) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      ttl = tonumber(ARGV[at + 2])
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    return {i, ttl}
  end
  fresh[i] = not used[1] and not used[2]
end
if #KEYS > n then
  local set = KEYS[n + 1]
  local lease = 3 * n + 2
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
  if redis.call('ZCARD', set) >= tonumber(ARGV[lease + 1]) then
    return {-1, 0}
  end
  redis.call('ZADD', set, now + tonumber(ARGV[lease + 2]), ARGV[lease])
  redis.call('PEXPIRE', set, ARGV[lease + 2])
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'calls', 1)
  if fresh[i] then
    redis.call('PEXPIRE', KEYS[i], ARGV[3 * i + 1])
  end
end
return {0, 0}
)lua";

// KEYS: the windows of quotas with a bandwidth; ARGV: the bytes, then each window's length (ms).
// A window that ended meanwhile starts again with these bytes: they count when the exchange ends.
constexpr std::string_view kChargeScript = R"lua(
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'bytes', ARGV[1])
  if redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[i + 1])
  end
end
return #KEYS
)lua";

// KEYS: lease sets; ARGV: the time to live (ms), then the member of each set to keep. A lease
// the server lost (it restarted) is added again: its stream is open.
constexpr std::string_view kRefreshScript = R"lua(
local time = redis.call('TIME')
local expiry = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], expiry, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return #KEYS
)lua";

constexpr size_t kAdmit = 0;  // Indexes of the scripts above in the connection's scripts.
constexpr size_t kRefresh = 1;
constexpr size_t kCharge = 2;
constexpr size_t kLeasesPerRefresh = 256;  // Keeps one command's size bounded.

bool IsInteger(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_INTEGER;
}

std::chrono::seconds RetryAfter(long long milliseconds) {
  return std::chrono::seconds(std::max<long long>(1, (milliseconds + 999) / 1000));
}

// A digest, so a name from a request is bounded in length and cannot reach other keys.
std::string Digest(std::string_view text) { return Sha256Hex(text).substr(0, 32); }

std::string WindowKey(const std::string& prefix, const CallCount& call) {
  return StrCat(prefix, "window:", Digest(StrCat(call.scope, '\0', call.key)));
}

// The verdict on a spent rate limit or (`quota`) quota, renewing in `retry_after`.
LimitVerdict Spent(bool quota, std::chrono::seconds retry_after) {
  LimitVerdict verdict;
  verdict.outcome = quota ? LimitVerdict::Outcome::kQuotaSpent : LimitVerdict::Outcome::kCallsSpent;
  verdict.retry_after = retry_after;
  return verdict;
}

std::string LeaseSetKey(const std::string& prefix, const std::string& subscription) {
  return StrCat(prefix, "streams:", Digest(subscription));
}

long long Milliseconds(std::chrono::seconds duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

}  // namespace

// The leases of one thread: ids handed to slots, the member each is on the server, and the
// refresh that keeps them alive. Used on its thread only.
class LeaseBook : public std::enable_shared_from_this<LeaseBook> {
 public:
  explicit LeaseBook(asio::any_io_executor executor) : timer_(executor) {
    std::random_device random;
    // Members of different workers and threads never collide: a random 64-bit name per book.
    member_prefix_ = StrCat(std::to_string((uint64_t{random()} << 32) | random()), ":");
  }

  void Use(std::weak_ptr<RedisConnection> connection) {
    connection_ = std::move(connection);
    if (!refreshing_) {
      refreshing_ = true;
      asio::co_spawn(timer_.get_executor(), Refresh(shared_from_this()),
                     LogWhatEscapes("the shared-state lease refresh"));
    }
  }
  void Stop() {
    stopped_ = true;
    timer_.cancel();
  }

  uint64_t NextId() { return ++last_id_; }
  std::string Member(uint64_t id) const { return StrCat(member_prefix_, id); }
  void Add(uint64_t id, std::string subscription) { leases_.emplace(id, std::move(subscription)); }

  void Release(uint64_t id) {
    auto found = leases_.find(id);
    if (found == leases_.end()) return;
    if (auto connection = connection_.lock()) {
      const std::string key = LeaseSetKey(connection->settings().key_prefix, found->second);
      const std::string member = Member(id);
      // If it is not connected now, the lease expires on its own within its time to live.
      connection->Send(std::vector<std::string_view>{"ZREM", key, member});
    }
    leases_.erase(found);
  }

 private:
  awaitable<void> Refresh(std::shared_ptr<LeaseBook> /*self: alive while this runs*/) {
    while (!stopped_) {
      timer_.expires_after(SharedCounters::kLeaseRefresh);
      co_await timer_.async_wait(kNoThrow);
      if (stopped_) co_return;
      std::shared_ptr<RedisConnection> connection = connection_.lock();
      if (!connection || !connection->ready() || leases_.empty()) continue;
      const std::string ttl = std::to_string(Milliseconds(SharedCounters::kLeaseTtl));
      std::vector<std::string> keys;
      std::vector<std::string> members;
      for (auto it = leases_.begin(); it != leases_.end();) {
        keys.push_back(LeaseSetKey(connection->settings().key_prefix, it->second));
        members.push_back(Member(it->first));
        if (++it == leases_.end() || keys.size() == kLeasesPerRefresh) {
          const std::string count = std::to_string(keys.size());
          std::vector<std::string_view> args{"EVALSHA", connection->script_sha(kRefresh), count};
          args.insert(args.end(), keys.begin(), keys.end());
          args.push_back(ttl);
          args.insert(args.end(), members.begin(), members.end());
          connection->Send(args);
          keys.clear();
          members.clear();
        }
      }
    }
  }

  asio::steady_timer timer_;
  std::weak_ptr<RedisConnection> connection_;
  std::string member_prefix_;
  uint64_t last_id_ = 0;
  std::unordered_map<uint64_t, std::string> leases_;  // id -> subscription
  bool refreshing_ = false;
  bool stopped_ = false;
};

SubscriptionStreamSlot::~SubscriptionStreamSlot() {
  if (streams_ != nullptr) streams_->Close(subscription_);
  if (book_ != nullptr) book_->Release(lease_);
}

bool SharedStateStatus::UpdateMetrics() {
  const bool available = connections_ > 0 && up_ == connections_;
  metrics_.shared_state_configured = connections_ > 0 ? 1 : 0;
  metrics_.shared_state_available = available ? 1 : 0;
  return available;
}

void SharedStateStatus::ConnectionAdded() {
  std::lock_guard lock(mu_);
  ++connections_;
  UpdateMetrics();
}

void SharedStateStatus::ConnectionRemoved(bool was_up) {
  std::lock_guard lock(mu_);
  --connections_;
  if (was_up) --up_;
  UpdateMetrics();
  if (connections_ == 0) available_.reset();
}

void SharedStateStatus::ConnectionUp(const std::string& server) {
  std::lock_guard lock(mu_);
  ++up_;
  // One line per change of the worker's state: a thread connecting while another is not yet
  // changes nothing to say.
  if (UpdateMetrics() && available_ != true) {
    spdlog::info("shared state: counting limits on {} across the gateway's workers", server);
    available_ = true;
  }
}

void SharedStateStatus::ConnectionDown(bool was_up, const std::string& server,
                                       const std::string& why) {
  std::lock_guard lock(mu_);
  if (was_up) --up_;
  UpdateMetrics();
  if (available_ != false) {
    spdlog::warn("shared state: {} is unavailable ({}); {} until it is back", server, why,
                 fail_closed_ ? "requests that a limit counts are refused with 503 (fail closed)"
                              : "each worker counts its limits alone (fail open)");
    available_ = false;
  }
}

SharedCounters::SharedCounters(asio::any_io_executor executor, const SharedStateOptions& options,
                               RateLimiter& local_calls, SubscriptionStreams& local_streams,
                               SharedStateStatus& status, Metrics& metrics)
    : executor_(executor),
      options_(options),
      local_calls_(local_calls),
      local_streams_(local_streams),
      status_(status),
      metrics_(metrics),
      leases_(std::make_shared<LeaseBook>(executor)) {}

SharedCounters::~SharedCounters() {
  leases_->Stop();
  if (connection_) status_.ConnectionRemoved(connection_up_);
}

bool SharedCounters::Shared(const std::shared_ptr<const RedisSettings>& snapshot_setting) {
  if (options_.redis) {
    if (!connection_) Connect(*options_.redis);
    return true;
  }
  if (snapshot_setting == connected_setting_) return connection_ != nullptr;
  if (snapshot_setting == nullptr) {
    if (connection_) status_.ConnectionRemoved(connection_up_);
    connection_.reset();
    connected_setting_ = nullptr;
    return false;
  }
  // A new snapshot: reconnect only if the setting itself changed.
  if (!connection_ || !(connection_->settings() == *snapshot_setting)) Connect(*snapshot_setting);
  connected_setting_ = snapshot_setting;
  return true;
}

void SharedCounters::Connect(const RedisSettings& settings) {
  if (connection_) status_.ConnectionRemoved(connection_up_);
  connection_.reset();
  connection_up_ = false;
  status_.ConnectionAdded();
  RedisConnection::Options options;
  options.reply_timeout = options_.timeout;
  options.scripts = {std::string(kAdmitScript), std::string(kRefreshScript),
                     std::string(kChargeScript)};
  options.on_change = [this, server = settings.Describe()](bool up, const std::string& why) {
    if (up) {
      connection_up_ = true;
      status_.ConnectionUp(server);
    } else {
      status_.ConnectionDown(std::exchange(connection_up_, false), server, why);
    }
  };
  connection_ = std::make_shared<RedisConnection>(executor_, settings, std::move(options));
  leases_->Use(connection_);
}

awaitable<LimitVerdict> SharedCounters::Admit(const LimitRequest& request) {
  std::string unavailable = "no shared-state server is configured";
  if (connection_ && connection_->ready()) {
    const std::string& prefix = connection_->settings().key_prefix;
    std::vector<std::string> keys;
    std::vector<std::string> values{std::to_string(request.calls.size())};
    for (const CallCount& call : request.calls) {
      keys.push_back(WindowKey(prefix, call));
      values.push_back(std::to_string(call.calls));
      values.push_back(std::to_string(call.bytes));
      values.push_back(std::to_string(Milliseconds(call.period)));
    }
    uint64_t lease = 0;
    if (request.max_streams > 0) {
      lease = leases_->NextId();
      keys.push_back(LeaseSetKey(prefix, request.stream_subscription));
      values.push_back(leases_->Member(lease));
      values.push_back(std::to_string(request.max_streams));
      values.push_back(std::to_string(Milliseconds(kLeaseTtl)));
    }
    const std::string key_count = std::to_string(keys.size());
    std::vector<std::string_view> args{"EVALSHA", connection_->script_sha(kAdmit), key_count};
    args.insert(args.end(), keys.begin(), keys.end());
    args.insert(args.end(), values.begin(), values.end());
    // Held: the connection may be replaced while this call waits.
    std::shared_ptr<RedisConnection> connection = connection_;
    absl::StatusOr<RedisReply> reply = co_await connection->Call(std::move(args));
    if (reply.ok()) {
      const redisReply& answer = **reply;
      if (answer.type == REDIS_REPLY_ARRAY && answer.elements == 2 &&
          IsInteger(answer.element[0]) && IsInteger(answer.element[1])) {
        const long long which = answer.element[0]->integer;
        LimitVerdict verdict;
        if (which == 0) {
          if (lease != 0) {
            leases_->Add(lease, request.stream_subscription);
            verdict.slot = SubscriptionStreamSlot(leases_, lease);
          }
        } else if (which < 0) {
          verdict.outcome = LimitVerdict::Outcome::kStreamsFull;
        } else {
          const bool quota =
              static_cast<size_t>(which) <= request.calls.size() && request.calls[which - 1].quota;
          verdict = Spent(quota, RetryAfter(answer.element[1]->integer));
        }
        co_return verdict;
      }
      unavailable = answer.type == REDIS_REPLY_ERROR
                        ? StrCat("it refused the count: ", std::string_view(answer.str, answer.len))
                        : "it answered the count with an unexpected reply";
    } else {
      unavailable = std::string(reply.status().message());
    }
  } else if (connection_) {
    unavailable = "not connected";
  }
  ++metrics_.shared_state_unavailable_calls;
  if (options_.fail_closed) {
    LimitVerdict verdict;
    verdict.outcome = LimitVerdict::Outcome::kUnavailable;
    verdict.unavailable = std::move(unavailable);
    co_return verdict;
  }
  co_return AdmitLocally(request);
}

LimitVerdict SharedCounters::AdmitLocally(const LimitRequest& request) {
  LimitVerdict verdict;
  if (request.max_streams > 0 &&
      !local_streams_.TryOpen(request.stream_subscription, request.max_streams)) {
    verdict.outcome = LimitVerdict::Outcome::kStreamsFull;
    return verdict;
  }
  for (const CallCount& call : request.calls) {
    if (auto retry = local_calls_.Acquire(call)) {
      if (request.max_streams > 0) local_streams_.Close(request.stream_subscription);
      return Spent(call.quota, *retry);
    }
  }
  if (request.max_streams > 0) {
    verdict.slot = SubscriptionStreamSlot(local_streams_, request.stream_subscription);
  }
  return verdict;
}

void SharedCounters::Charge(const std::vector<CallCount>& quotas, uint64_t bytes) {
  if (quotas.empty() || bytes == 0) return;
  if (!connection_ || !connection_->ready()) {
    for (const CallCount& quota : quotas) local_calls_.Charge(quota, bytes);
    return;
  }
  const std::string& prefix = connection_->settings().key_prefix;
  std::vector<std::string> values{std::to_string(bytes)};
  std::vector<std::string> keys;
  for (const CallCount& quota : quotas) {
    keys.push_back(WindowKey(prefix, quota));
    values.push_back(std::to_string(Milliseconds(quota.period)));
  }
  const std::string key_count = std::to_string(keys.size());
  std::vector<std::string_view> args{"EVALSHA", connection_->script_sha(kCharge), key_count};
  args.insert(args.end(), keys.begin(), keys.end());
  args.insert(args.end(), values.begin(), values.end());
  // Not awaited: a reply lost with a dropped connection loses these bytes' count, as a worker
  // that dies would.
  connection_->Send(args);
}

}  // namespace apim::dataplane

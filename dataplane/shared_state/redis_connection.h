#pragma once
// One connection of a worker thread to its gateway's Redis server. Commands are pipelined: each
// is written as it comes, and the replies, which Redis sends in order, go to the callers in that
// order; a caller waits one round trip and the thread never blocks. hiredis formats and parses
// RESP (only its formatter and reader: Debian 12's hiredis 0.14 has no TLS, and its own I/O
// blocks or needs an event library); the bytes go over a SocketStream, plaintext or TLS as to a
// backend.
//
// The connection keeps itself up: it connects, authenticates, selects the database and loads the
// scripts it was given, then serves calls, pinging the server while idle. When the server goes
// away, refuses, breaks the protocol, or leaves a call without a reply past the bound, the
// connection is dropped and made again after a backoff (0.1 s doubling to 5 s). Meanwhile calls
// fail at once (UNAVAILABLE), so callers can count locally or refuse without waiting.

#include <hiredis/hiredis.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/shared_state/redis_settings.h"

namespace apim::dataplane {

struct RedisReplyFree {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyFree>;

class RedisConnection {
 public:
  struct Options {
    // A call without its reply after this long drops the connection (the server is too slow).
    std::chrono::milliseconds reply_timeout{50};
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds ping_interval{5000};
    // Lua scripts loaded on every connection, for EVALSHA with script_sha().
    std::vector<std::string> scripts;
    // Told each time the connection becomes usable (true) or stops being usable (false, why).
    std::function<void(bool ready, const std::string& why)> on_change;
  };

  // Starts connecting at once; keeps the connection up until destroyed.
  RedisConnection(boost::asio::any_io_executor executor, RedisSettings settings, Options options);
  // Closes the connection; calls waiting for a reply get UNAVAILABLE.
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  const RedisSettings& settings() const;
  bool ready() const;
  // The SHA1 of Options::scripts[index], for EVALSHA.
  const std::string& script_sha(size_t index) const;

  // Sends a command (its arguments, e.g. {"EVALSHA", sha, "1", key, ...}) and waits for the
  // reply: UNAVAILABLE when not connected or the connection broke meanwhile, DEADLINE_EXCEEDED
  // past the bound. An error reply is a reply (type REDIS_REPLY_ERROR).
  boost::asio::awaitable<absl::StatusOr<RedisReply>> Call(std::vector<std::string_view> args);
  // Sends a command whose reply nobody waits for; false when not connected.
  bool Send(std::span<const std::string_view> args);

 private:
  class Core;
  std::shared_ptr<Core> core_;
};

}  // namespace apim::dataplane

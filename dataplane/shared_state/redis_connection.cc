#include "dataplane/shared_state/redis_connection.h"

#include <hiredis/read.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <optional>

#include "common/str_cat.h"
#include "dataplane/backend/backend_connect.h"
#include "dataplane/backend/backend_tls.h"
#include "dataplane/exchange/exchange_io.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Clock = std::chrono::steady_clock;

struct ReaderFree {
  void operator()(redisReader* reader) const { redisReaderFree(reader); }
};

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};
constexpr size_t kReadChunk = 16 * 1024;

std::string Format(std::span<const std::string_view> args) {
  std::vector<const char*> pointers;
  std::vector<size_t> sizes;
  pointers.reserve(args.size());
  sizes.reserve(args.size());
  for (std::string_view arg : args) {
    pointers.push_back(arg.data());
    sizes.push_back(arg.size());
  }
  char* command = nullptr;
  const int size = redisFormatCommandArgv(&command, static_cast<int>(args.size()), pointers.data(),
                                          sizes.data());
  if (size < 0) throw std::bad_alloc();
  std::string formatted(command, static_cast<size_t>(size));
  redisFreeCommand(command);
  return formatted;
}

std::string ReplyText(const redisReply& reply) {
  return reply.str != nullptr ? std::string(reply.str, reply.len) : std::string();
}

}  // namespace

class RedisConnection::Core : public std::enable_shared_from_this<RedisConnection::Core> {
 public:
  Core(asio::any_io_executor executor, RedisSettings settings, Options options)
      : executor_(executor),
        settings_(std::move(settings)),
        options_(std::move(options)),
        wake_(executor),
        reply_deadline_(executor) {}

  void Start() {
    asio::co_spawn(executor_, KeepUp(shared_from_this()),
                   LogWhatEscapes("the shared-state connection"));
  }

  void Stop() {
    stopped_ = true;
    Drop("the worker stopped using this server");
    wake_.cancel();
    reply_deadline_.cancel();
  }

  const RedisSettings& settings() const { return settings_; }
  bool ready() const { return state_ == State::kReady; }
  const std::string& script_sha(size_t index) const { return shas_.at(index); }

  awaitable<absl::StatusOr<RedisReply>> Call(std::vector<std::string_view> args,
                                             bool while_preparing = false) {
    // Held by the frame: the connection may be dropped while this call waits.
    std::shared_ptr<Core> self = shared_from_this();
    if (!(state_ == State::kReady || (while_preparing && state_ == State::kPreparing))) {
      co_return absl::UnavailableError(StrCat("no connection to ", settings_.Describe(),
                                              last_failure_.empty() ? "" : ": ", last_failure_));
    }
    auto pending = std::make_shared<Pending>(executor_);
    Queue(pending, while_preparing ? options_.connect_timeout : options_.reply_timeout);
    Write(Format(args));
    // The reply, the connection's loss, or the bound passed (WatchDeadline) cancels the wait.
    if (!pending->result) co_await pending->signal.async_wait(kNoThrow);
    if (!pending->result) co_return absl::UnavailableError("the worker stopped");
    co_return std::move(*pending->result);
  }

  bool Send(std::span<const std::string_view> args) {
    if (state_ != State::kReady) return false;
    Queue(nullptr, options_.reply_timeout);
    Write(Format(args));
    return true;
  }

 private:
  enum class State { kDown, kConnecting, kPreparing, kReady };
  struct Pending {
    // A timer that never expires by itself, so arming it does not reprogram the reactor's clock
    // for every call: cancelled when the result is in.
    explicit Pending(asio::any_io_executor executor) : signal(executor, Clock::time_point::max()) {}
    asio::steady_timer signal;
    std::optional<absl::StatusOr<RedisReply>> result;
  };
  // A command sent whose reply has not come: null `pending` for a reply nobody waits for.
  struct Awaited {
    std::shared_ptr<Pending> pending;
    Clock::time_point deadline;
    std::chrono::milliseconds bound;
  };

  void Queue(std::shared_ptr<Pending> pending, std::chrono::milliseconds bound) {
    awaited_.push_back({std::move(pending), Clock::now() + bound, bound});
    if (!deadline_armed_) {
      WatchDeadline();
    } else if (awaited_.front().deadline < reply_deadline_.expiry()) {
      reply_deadline_.cancel();  // Armed for a longer bound (a connect's); the handler re-arms.
    }
  }

  // One timer for all calls: replies come in order, so the oldest call waiting is the first to
  // pass its bound. Past it, that call gets DEADLINE_EXCEEDED and the connection is dropped.
  void WatchDeadline() {
    if (awaited_.empty() || stopped_) return;
    const Awaited& oldest = awaited_.front();
    if (oldest.deadline <= Clock::now()) {
      const std::string bound = StrCat(oldest.bound.count(), " ms");
      if (oldest.pending != nullptr && !oldest.pending->result) {
        oldest.pending->result = absl::DeadlineExceededError(
            StrCat(settings_.Describe(), " did not reply within ", bound));
        oldest.pending->signal.cancel();
      }
      Drop(StrCat("no reply within ", bound));
      return;
    }
    deadline_armed_ = true;
    reply_deadline_.expires_at(oldest.deadline);
    reply_deadline_.async_wait([self = shared_from_this()](boost::system::error_code) {
      self->deadline_armed_ = false;
      self->WatchDeadline();
    });
  }

  // `self` keeps the core alive while the coroutine runs.
  awaitable<void> KeepUp(std::shared_ptr<Core> /*self*/) {
    std::chrono::milliseconds backoff = kFirstBackoff;
    while (!stopped_) {
      std::string failure = co_await Connect();
      if (failure.empty()) failure = co_await Prepare();
      if (stopped_) co_return;
      if (failure.empty()) {
        backoff = kFirstBackoff;
        SetState(State::kReady, "");
        failure = co_await ServeUntilDropped();
        if (stopped_) co_return;
      }
      Drop(failure);
      SetState(State::kDown, failure);
      wake_.expires_after(backoff);
      co_await wake_.async_wait(kNoThrow);
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }

  // Empty on success, else why not.
  awaitable<std::string> Connect() {
    state_ = State::kConnecting;
    ++generation_;
    tcp::socket socket(executor_);
    boost::system::error_code error;
    const std::string port = std::to_string(settings_.port);
    const asio::ip::address address = asio::ip::make_address(settings_.host, error);
    if (!error) {
      error = co_await ConnectToBackend(socket, tcp::endpoint(address, settings_.port),
                                        options_.connect_timeout);
    } else {
      tcp::resolver resolver(executor_);
      auto [resolve_error, endpoints] =
          co_await resolver.async_resolve(settings_.host, port, kNoThrow);
      if (stopped_) co_return "stopped";
      if (resolve_error)
        co_return StrCat("cannot resolve ", settings_.host, ": ", resolve_error.message());
      error = asio::error::host_not_found;
      for (const auto& entry : endpoints) {
        error = co_await ConnectToBackend(socket, entry.endpoint(), options_.connect_timeout);
        if (!error || stopped_) break;
      }
    }
    if (stopped_) co_return "stopped";
    if (error) co_return StrCat("cannot connect: ", error.message());
    if (!settings_.tls) {
      stream_.emplace(std::move(socket));
    } else {
      BackendTlsSettings tls;
      tls.ca_pem = settings_.ca_pem;
      absl::StatusOr<std::shared_ptr<BackendTlsContext>> context = BackendTlsContext::For(tls);
      if (!context.ok()) co_return std::string(context.status().message());
      // Held for the connection's life: OpenSSL calls back into it after the handshake too (a
      // TLS 1.3 session ticket arrives with the first reply).
      tls_context_ = *std::move(context);
      const int fd = socket.native_handle();
      stream_.emplace(std::move(socket), tls_context_->NewConnection(fd, settings_.host, port));
      std::string why;
      error = co_await stream_->Handshake(options_.connect_timeout, why, &HandshakeFailure);
      if (stopped_) co_return "stopped";
      if (error) co_return StrCat("TLS handshake failed: ", why.empty() ? error.message() : why);
    }
    reader_.reset(redisReaderCreate());
    if (!reader_) throw std::bad_alloc();
    asio::co_spawn(executor_, ReadReplies(shared_from_this(), generation_),
                   LogWhatEscapes("the shared-state connection's reader"));
    co_return "";
  }

  // AUTH, SELECT and SCRIPT LOAD, pipelined; empty on success, else why not.
  awaitable<std::string> Prepare() {
    state_ = State::kPreparing;
    const std::string database = std::to_string(settings_.database);
    std::vector<std::vector<std::string_view>> commands;
    if (!settings_.password.empty()) {
      if (settings_.username.empty()) {
        commands.push_back({"AUTH", settings_.password});
      } else {
        commands.push_back({"AUTH", settings_.username, settings_.password});
      }
    }
    if (settings_.database != 0) commands.push_back({"SELECT", database});
    for (const std::string& script : options_.scripts) {
      commands.push_back({"SCRIPT", "LOAD", script});
    }
    shas_.clear();
    for (const auto& command : commands) {
      absl::StatusOr<RedisReply> reply = co_await Call(command, /*while_preparing=*/true);
      if (!reply.ok()) co_return std::string(reply.status().message());
      if ((*reply)->type == REDIS_REPLY_ERROR) {
        // Never the command itself: AUTH's holds the password.
        co_return StrCat("the server refused ",
                         command.front() == "AUTH" ? "the credentials" : command.front(), ": ",
                         ReplyText(**reply));
      }
      if (command.front() == "SCRIPT") shas_.push_back(ReplyText(**reply));
    }
    co_return "";
  }

  // While ready: pings when idle, so a server that went silent is noticed without a caller.
  // Returns why the connection was dropped.
  awaitable<std::string> ServeUntilDropped() {
    const uint64_t generation = generation_;
    while (!stopped_ && generation == generation_) {
      wake_.expires_after(options_.ping_interval);
      auto [cancelled] = co_await wake_.async_wait(kNoThrow);
      if (stopped_ || generation != generation_) break;
      if (cancelled) continue;
      std::vector<std::string_view> ping{"PING"};
      absl::StatusOr<RedisReply> pong = co_await Call(std::move(ping));
      if (pong.ok() && (*pong)->type == REDIS_REPLY_ERROR) {
        Drop(StrCat("PING refused: ", ReplyText(**pong)));
      }
    }
    co_return last_failure_;
  }

  // Reads with the reactor's own read (tried at once, then waited for): a readiness wait would
  // re-register the socket with epoll on every reply.
  awaitable<void> ReadReplies(std::shared_ptr<Core> /*self*/, uint64_t generation) {
    std::vector<char> buffer(kReadChunk);
    while (generation == generation_) {
      auto [error, bytes] =
          co_await stream_->async_read_some(asio::buffer(buffer.data(), buffer.size()), kNoThrow);
      if (generation != generation_) co_return;
      if (error) {
        Drop(error == asio::error::eof ? std::string("the server closed the connection")
                                       : StrCat("connection lost: ", error.message()));
        co_return;
      }
      if (redisReaderFeed(reader_.get(), buffer.data(), bytes) != REDIS_OK) {
        Drop("cannot read its replies");
        co_return;
      }
      Deliver();
    }
  }

  // Hands each complete reply to the call it answers, in order.
  void Deliver() {
    for (;;) {
      void* parsed = nullptr;
      if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK) {
        Drop(StrCat("a reply broke the protocol: ", reader_->errstr));
        return;
      }
      if (parsed == nullptr) return;
      RedisReply reply(static_cast<redisReply*>(parsed));
      if (awaited_.empty()) {
        Drop("the server sent a reply nobody asked for");
        return;
      }
      std::shared_ptr<Pending> pending = std::move(awaited_.front().pending);
      awaited_.pop_front();
      if (pending == nullptr) {
        if (reply->type == REDIS_REPLY_ERROR) {
          spdlog::warn("shared state: {} refused a command: {}", settings_.Describe(),
                       ReplyText(*reply));
        }
      } else if (!pending->result) {
        pending->result = std::move(reply);
        pending->signal.cancel();
      }
    }
  }

  // Queues a command; the commands queued while the thread's other work runs go out together,
  // in one write, once it has run.
  void Write(std::string bytes) {
    out_.append(bytes);
    if (writing_ || flush_posted_) return;
    flush_posted_ = true;
    asio::post(executor_, [self = shared_from_this()] {
      self->flush_posted_ = false;
      if (!self->writing_ && self->stream_) self->Flush(self->generation_);
    });
  }

  // Writes what is queued as far as the socket takes it now; the rest waits in a coroutine.
  void Flush(uint64_t generation) {
    while (!out_.empty()) {
      const SocketStream::Tried tried = stream_->TryWrite(out_.data(), out_.size());
      if (tried.bytes > 0) {
        out_.erase(0, tried.bytes);
        continue;
      }
      if (tried.wait == SocketStream::Wait::kNone) {
        Drop(StrCat("connection lost: ", tried.error.message()));
        return;
      }
      writing_ = true;
      asio::co_spawn(executor_, AwaitWritable(shared_from_this(), generation, tried.wait),
                     LogWhatEscapes("the shared-state connection's writer"));
      return;
    }
  }

  awaitable<void> AwaitWritable(std::shared_ptr<Core> /*self*/, uint64_t generation,
                                SocketStream::Wait wait) {
    const tcp::socket::wait_type until =
        wait == SocketStream::Wait::kReadable ? tcp::socket::wait_read : tcp::socket::wait_write;
    auto [error] = co_await stream_->socket().async_wait(until, kNoThrow);
    if (generation != generation_) co_return;
    writing_ = false;
    if (error) {
      Drop(StrCat("connection lost: ", error.message()));
      co_return;
    }
    Flush(generation);
  }

  // Closes the connection; every call waiting for a reply gets UNAVAILABLE.
  void Drop(const std::string& why) {
    if (state_ == State::kDown) return;
    last_failure_ = why;
    ++generation_;
    state_ = State::kDown;
    if (stream_) {
      boost::system::error_code ignored;
      stream_->socket().close(ignored);
    }
    out_.clear();
    writing_ = false;
    reader_.reset();
    std::deque<Awaited> failed;
    failed.swap(awaited_);
    for (const auto& [pending, deadline, bound] : failed) {
      if (pending == nullptr || pending->result) continue;
      pending->result = absl::UnavailableError(
          StrCat("the connection to ", settings_.Describe(), " was lost: ", why));
      pending->signal.cancel();
    }
    wake_.cancel();
  }

  void SetState(State state, const std::string& why) {
    const bool was_ready = reported_ready_;
    state_ = state;
    reported_ready_ = state == State::kReady;
    if (was_ready != reported_ready_ || !reported_once_) {
      reported_once_ = true;
      if (options_.on_change) options_.on_change(reported_ready_, why);
    }
  }

  asio::any_io_executor executor_;
  const RedisSettings settings_;
  const Options options_;
  asio::steady_timer wake_;            // Backoff and ping interval; cancelled by Drop and Stop.
  asio::steady_timer reply_deadline_;  // The oldest awaited reply's bound (WatchDeadline).
  bool deadline_armed_ = false;
  State state_ = State::kDown;
  bool stopped_ = false;
  bool reported_ready_ = false;
  bool reported_once_ = false;
  // Counts connections made and dropped: a coroutine of an earlier connection ends on seeing it
  // changed.
  uint64_t generation_ = 0;
  std::shared_ptr<BackendTlsContext> tls_context_;  // Outlives stream_ (declared before it).
  std::optional<SocketStream> stream_;
  std::unique_ptr<redisReader, ReaderFree> reader_;
  std::deque<Awaited> awaited_;
  std::string out_;
  bool writing_ = false;
  bool flush_posted_ = false;
  std::vector<std::string> shas_;
  std::string last_failure_;
};

RedisConnection::RedisConnection(asio::any_io_executor executor, RedisSettings settings,
                                 Options options)
    : core_(std::make_shared<Core>(executor, std::move(settings), std::move(options))) {
  core_->Start();
}

RedisConnection::~RedisConnection() { core_->Stop(); }

const RedisSettings& RedisConnection::settings() const { return core_->settings(); }
bool RedisConnection::ready() const { return core_->ready(); }
const std::string& RedisConnection::script_sha(size_t index) const {
  return core_->script_sha(index);
}

awaitable<absl::StatusOr<RedisReply>> RedisConnection::Call(std::vector<std::string_view> args) {
  return core_->Call(std::move(args));
}

bool RedisConnection::Send(std::span<const std::string_view> args) { return core_->Send(args); }

}  // namespace apim::dataplane

#include "dataplane/listener/worker.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <optional>
#include <thread>

#include "common/str_cat.h"
#include "dataplane/admin/access_log.h"
#include "dataplane/admin/admin_server.h"
#include "dataplane/codec/http2/http2_connection.h"
#include "dataplane/exchange/exchange_io.h"
#include "dataplane/listener/serve_client.h"
#include "dataplane/net/tcp_keepalive.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The connection a client of `acceptor` gets: plaintext, or on the TLS listener an SSL with the
// certificates the current snapshot serves. Null for a TLS client while none are served: the
// connection is closed at once, which the client sees as a failed handshake.
std::optional<SocketStream> Accepted(tcp::socket socket, bool tls, SessionContext& context) {
  if (!tls) return SocketStream(std::move(socket));
  std::shared_ptr<const RuntimeSnapshot> snapshot = context.snapshots.Current();
  SslPtr ssl =
      snapshot && snapshot->certificates
          ? snapshot->certificates->NewConnection(socket.native_handle(), context.limits.http2)
          : nullptr;
  if (!ssl) {
    ++context.metrics.client_tls_failed;
    // Said once per snapshot, not per client: a scanner would fill the log otherwise.
    static std::atomic<uint64_t> warned_for{~uint64_t{0}};
    const uint64_t version = snapshot ? snapshot->source.version() : 0;
    if (warned_for.exchange(version) != version) {
      spdlog::warn("--tls-listen: TLS clients are refused: config version {} serves no certificate",
                   version);
    }
    return std::nullopt;
  }
  return SocketStream(std::move(socket), std::move(ssl));
}

asio::awaitable<void> AcceptLoop(tcp::acceptor& acceptor, bool tls, SessionContext& context) {
  for (;;) {
    tcp::endpoint peer;
    auto [error, socket] = co_await acceptor.async_accept(peer, kNoThrow);
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) {
      // Out of descriptors or similar: back off briefly instead of spinning.
      spdlog::warn("accept: {}", error.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    std::optional<SocketStream> client = Accepted(std::move(socket), tls, context);
    if (!client) continue;
    asio::co_spawn(acceptor.get_executor(), ServeClient(*std::move(client), peer, context),
                   LogWhatEscapes("a client connection"));
  }
}

absl::StatusOr<tcp::acceptor> Listen(asio::io_context& io, const tcp::endpoint& endpoint,
                                     bool reuse_port) {
  tcp::acceptor acceptor(io);
  boost::system::error_code error;
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (!error && reuse_port) {
    int one = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      error.assign(errno, boost::system::system_category());
    }
  }
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError(StrCat("cannot listen on ", endpoint.address().to_string(), ":",
                                         endpoint.port(), ": ", error.message()));
  }
  return acceptor;
}

// Options for the connections a proxy listener accepts. Linux copies them from the listening
// socket to each accepted one, which saves five system calls per connection.
absl::Status SetAcceptedSocketOptions(tcp::acceptor& acceptor, const ProxyLimits& limits) {
  boost::system::error_code error;
  acceptor.set_option(tcp::no_delay(true), error);
  if (!error) error = SetTcpKeepalive(acceptor.native_handle(), limits);
  if (error) return absl::InternalError(StrCat("cannot set TCP options: ", error.message()));
  return absl::OkStatus();
}

}  // namespace

struct Worker::Thread {
  explicit Thread(Worker& worker)
      : io(1),
        acceptor(io),
        tls_acceptor(io),
        pool(io.get_executor()),
        shared_counters(io.get_executor(), worker.options_.shared_state, worker.rate_limiter_,
                        worker.subscription_streams_, worker.shared_state_status_, worker.metrics_),
        context{.snapshots = worker.snapshots_,
                .metrics = worker.metrics_,
                .pool = pool,
                .limits = worker.options_.limits,
                .open_relays = open_relays,
                .http2_connections = http2_connections,
                .draining = worker.draining_,
                .rate_limiter = worker.rate_limiter_,
                .cache = worker.cache_,
                .subscription_streams = worker.subscription_streams_,
                .buffer_budget = worker.buffer_budget_,
                .shared_counters = shared_counters} {
    UseSharedState();
  }
  // Connects to the shared-state server the options or the current snapshot name, if any.
  void UseSharedState() {
    const std::shared_ptr<const RuntimeSnapshot> snapshot = context.snapshots.Current();
    shared_counters.Shared(snapshot ? snapshot->shared_state : nullptr);
  }
  asio::io_context io;
  tcp::acceptor acceptor;
  tcp::acceptor tls_acceptor;  // Open with --tls-listen.
  UpstreamPool pool;
  std::unordered_set<StreamClock*> open_relays;
  std::unordered_set<Http2Connection*> http2_connections;
  SharedCounters shared_counters;
  SessionContext context;
};

absl::StatusOr<tcp::endpoint> ParseEndpoint(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(StrCat("\"", text, "\" must be HOST:PORT"));
  }
  std::string host = text.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  boost::system::error_code error;
  asio::ip::address address = asio::ip::make_address(host, error);
  int port = -1;
  try {
    port = std::stoi(text.substr(colon + 1));
  } catch (...) {
  }
  if (error || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        StrCat("\"", text, "\" must be an IP address and a port, e.g. 127.0.0.1:8080"));
  }
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

Worker::Worker(WorkerOptions options, SnapshotStore& snapshots, Metrics& metrics)
    : options_(std::move(options)),
      snapshots_(snapshots),
      metrics_(metrics),
      rate_limiter_(metrics, options_.rate_limit_max_keys),
      cache_(options_.cache_max_bytes),
      buffer_budget_(options_.buffer_budget_bytes, metrics),
      shared_state_status_(metrics, options_.shared_state.fail_closed) {
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.push_back(std::make_unique<Thread>(*this));
  }
  // A snapshot that changes the shared-state server is put to use at once by every thread.
  snapshots_.SetPublishedHook([this] {
    for (auto& thread : threads_)
      asio::post(thread->io, [&thread = *thread] { thread.UseSharedState(); });
  });
}

Worker::~Worker() { snapshots_.SetPublishedHook(nullptr); }

asio::io_context& Worker::control_context() { return threads_.front()->io; }

absl::Status Worker::Bind() {
  absl::StatusOr<tcp::endpoint> proxy = ParseEndpoint(options_.listen);
  if (!proxy.ok()) return proxy.status();
  absl::StatusOr<tcp::endpoint> admin = ParseEndpoint(options_.admin_listen);
  if (!admin.ok()) return admin.status();
  // One listener per thread on the same port (SO_REUSEPORT); the first settles the port, so
  // port 0 means one port for every thread.
  const auto listen_on_every_thread =
      [&](tcp::endpoint endpoint, tcp::acceptor Thread::*which) -> absl::StatusOr<uint16_t> {
    for (auto& thread : threads_) {
      absl::StatusOr<tcp::acceptor> acceptor = Listen(thread->io, endpoint, /*reuse_port=*/true);
      if (!acceptor.ok()) return acceptor.status();
      if (absl::Status set = SetAcceptedSocketOptions(*acceptor, options_.limits); !set.ok()) {
        return set;
      }
      (*thread).*which = *std::move(acceptor);
      endpoint.port(((*thread).*which).local_endpoint().port());
    }
    return endpoint.port();
  };
  absl::StatusOr<uint16_t> proxy_port = listen_on_every_thread(*proxy, &Thread::acceptor);
  if (!proxy_port.ok()) return proxy_port.status();
  proxy_port_ = *proxy_port;
  if (!options_.tls_listen.empty()) {
    absl::StatusOr<tcp::endpoint> tls = ParseEndpoint(options_.tls_listen);
    if (!tls.ok())
      return absl::InvalidArgumentError(StrCat("--tls-listen: ", tls.status().message()));
    absl::StatusOr<uint16_t> tls_port = listen_on_every_thread(*tls, &Thread::tls_acceptor);
    if (!tls_port.ok()) return tls_port.status();
    tls_port_ = *tls_port;
  }
  absl::StatusOr<tcp::acceptor> admin_acceptor =
      Listen(control_context(), *admin, /*reuse_port=*/false);
  if (!admin_acceptor.ok()) return admin_acceptor.status();
  admin_acceptor_ = std::make_unique<tcp::acceptor>(*std::move(admin_acceptor));
  admin_port_ = admin_acceptor_->local_endpoint().port();
  return absl::OkStatus();
}

void Worker::Run() {
  for (auto& thread : threads_) {
    asio::co_spawn(thread->io, AcceptLoop(thread->acceptor, /*tls=*/false, thread->context),
                   asio::detached);
    if (thread->tls_acceptor.is_open()) {
      asio::co_spawn(thread->io, AcceptLoop(thread->tls_acceptor, /*tls=*/true, thread->context),
                     asio::detached);
    }
  }
  asio::co_spawn(control_context(), ServeAdmin(*admin_acceptor_, snapshots_, metrics_),
                 asio::detached);
  // Each thread writes its access lines once per turn of its loop, and what is left as it stops.
  const auto run = [](asio::io_context& io) {
    AccessLogBatch access_log(io.get_executor());
    io.run();
  };
  std::vector<std::jthread> others;
  for (size_t i = 1; i < threads_.size(); ++i) {
    others.emplace_back([this, i, run] { run(threads_[i]->io); });
  }
  run(threads_.front()->io);
}

void Worker::Stop() {
  for (auto& thread : threads_) thread->io.stop();
}

void Worker::Drain(std::chrono::milliseconds timeout) {
  if (draining_.exchange(true)) return;
  metrics_.draining = 1;
  spdlog::info("draining: no new connections; streams end in {} ms", timeout.count());
  for (auto& thread : threads_) {
    asio::post(thread->io, [&thread = *thread] {
      boost::system::error_code ignored;
      thread.acceptor.close(ignored);
      thread.tls_acceptor.close(ignored);
      // HTTP/2 clients are told at once (GOAWAY) to open new streams elsewhere.
      const std::vector<Http2Connection*> connections(thread.http2_connections.begin(),
                                                      thread.http2_connections.end());
      for (Http2Connection* connection : connections) connection->Drain();
    });
  }
  const auto streams_end_at = std::chrono::steady_clock::now() + timeout;
  const auto give_up_at = streams_end_at + std::chrono::milliseconds(500);
  drain_timer_ = std::make_unique<asio::steady_timer>(control_context());
  // Checks every 50 ms: ends the streams once, then stops when no connection is left.
  // The function refers to itself weakly: only a pending wait keeps it, so it is freed once the
  // drain stops waiting.
  auto check = std::make_shared<std::function<void(bool)>>();
  *check = [this, weak_check = std::weak_ptr(check), streams_end_at,
            give_up_at](bool streams_ended) {
    const auto now = std::chrono::steady_clock::now();
    if (!streams_ended && now >= streams_end_at) {
      streams_ended = true;
      for (auto& thread : threads_) {
        asio::post(thread->io, [&open = thread->open_relays] {
          for (StreamClock* relay : open) relay->Drain();
        });
      }
    }
    if (metrics_.active_connections.load() == 0 || now >= give_up_at) {
      spdlog::info("drained: {} connections left", metrics_.active_connections.load());
      Stop();
      return;
    }
    drain_timer_->expires_after(std::chrono::milliseconds(50));
    drain_timer_->async_wait(
        [check = weak_check.lock(), streams_ended](const boost::system::error_code& error) {
          if (!error) (*check)(streams_ended);
        });
  };
  (*check)(false);
}

}  // namespace apim::dataplane

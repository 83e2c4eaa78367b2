// Scale-out on one machine: a gateway runs as several identical worker processes, and when one
// dies its SSE clients reconnect to the others with Last-Event-ID and, because the backend replays
// from that id, lose no event. The clients are EventSource-like readers written here, so the test
// sees exactly which ids each one received and from which worker.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/str_cat.h"
#include "tests/support/control_plane.h"
#include "tests/support/gateway.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"

namespace apim {
namespace {

using apim::testing::AuthorizedContext;
using apim::testing::BackendProcess;
using apim::testing::ChildProcess;
using apim::testing::CommandResult;
using apim::testing::ControlPlane;
using apim::testing::GatewayProcess;
using apim::testing::HeaderValue;
using apim::testing::HttpRequest;
using apim::testing::kTestAdminToken;
using apim::testing::ReadFile;
using apim::testing::RunCommand;
using apim::testing::TempDir;
using apim::testing::WaitForFile;
using apim::testing::WaitForFileContent;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kWorkers = 3;
constexpr size_t kStreamsPerWorker = 3;
constexpr size_t kVictim = 1;           // the worker that is killed
constexpr uint64_t kIdsBeforeKill = 8;  // every stream has seen this many events first
constexpr uint64_t kIdsAtEnd = 40;      // and this many by the end
constexpr char kEventsTarget[] = "/feed/events?interval_ms=50";

struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

std::string ToString(const Endpoint& endpoint) { return StrCat(endpoint.host, ":", endpoint.port); }

// A blocking TCP connection to `endpoint`, or -1 if it is refused. Connecting and sending are
// bounded (SO_SNDTIMEO), so a worker that vanished cannot hang the test.
int Connect(const Endpoint& endpoint) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval bound{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(endpoint.port);
  if (::inet_pton(AF_INET, endpoint.host.c_str(), &address.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::optional<uint64_t> ParseId(std::string_view text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The status of a GET on a fresh connection to any address (RawConnection is loopback-only).
int HttpStatus(const Endpoint& endpoint, const std::string& target) {
  int fd = Connect(endpoint);
  if (fd < 0) return 0;
  std::string received;
  if (SendAll(fd, StrCat("GET ", target, " HTTP/1.1\r\nHost: ", ToString(endpoint),
                         "\r\nConnection: close\r\n\r\n"))) {
    const auto deadline = Clock::now() + 10s;
    char buffer[4096];
    while (received.find("\r\n") == std::string::npos && Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) break;
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      received.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return received.size() > 12 ? std::stoi(received.substr(9, 3)) : 0;
}

// An EventSource as a browser runs one (WHATWG HTML, "server-sent events"), over a plain socket:
// it de-chunks the response, dispatches an event at each blank line (LF, CR or CRLF line ends),
// remembers the id of the last event dispatched, and when the connection is lost reconnects with
// `Last-Event-ID` — to another worker, the next that accepts in round-robin order starting at
// `rotation`. An event cut off by the loss is discarded, as the spec says. Unlike a browser it
// reconnects at once (no retry delay), and gives up on an answer that is not a 200 event stream.
// Not thread-safe; driven by PumpUntil.
class EventSourceClient {
 public:
  EventSourceClient(std::vector<Endpoint> workers, size_t first, size_t rotation,
                    std::string target)
      : workers_(std::move(workers)), rotation_(rotation), target_(std::move(target)) {
    if (!Open(first)) Fail(StrCat("cannot connect to ", ToString(workers_[first])));
  }
  ~EventSourceClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  EventSourceClient(const EventSourceClient&) = delete;
  EventSourceClient& operator=(const EventSourceClient&) = delete;

  // -1 once the client has given up.
  int fd() const { return fd_; }
  // One read of what the socket has; a lost connection is reconnected before this returns.
  void OnReadable() {
    char buffer[16384];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) {
      Receive(std::string_view(buffer, static_cast<size_t>(n)));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      Reconnect();
    }
  }

  // The ids of the events dispatched, in order, over every connection.
  const std::vector<uint64_t>& ids() const { return ids_; }
  uint64_t last_id() const { return ids_.empty() ? 0 : ids_.back(); }
  int reconnects() const { return reconnects_; }
  size_t worker() const { return current_; }
  // What the backend said it resumed after (its `: last-event-id N` comment), per connection.
  const std::vector<std::string>& resumed_after() const { return resumed_after_; }
  // Why the client gave up; empty while it is streaming.
  const std::string& error() const { return error_; }

 private:
  enum class Phase { kHead, kChunkSize, kChunkData, kChunkEnd, kBodyUntilClose, kEnded };

  bool Open(size_t worker) {
    int fd = Connect(workers_[worker]);
    if (fd < 0) return false;
    std::string request = StrCat("GET ", target_, " HTTP/1.1\r\nHost: ", ToString(workers_[worker]),
                                 "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n");
    if (!last_event_id_.empty()) StrAppendTo(request, "Last-Event-ID: ", last_event_id_, "\r\n");
    request += "\r\n";
    if (!SendAll(fd, request)) {
      ::close(fd);
      return false;
    }
    fd_ = fd;
    current_ = worker;
    phase_ = Phase::kHead;
    head_.clear();
    chunk_size_line_.clear();
    line_.clear();
    after_cr_ = false;
    data_seen_ = false;
    id_buffer_ = last_event_id_;
    return true;
  }

  void Reconnect() {
    ::close(fd_);
    fd_ = -1;
    ++reconnects_;
    const size_t n = workers_.size();
    for (size_t k = 0; k + 1 < n; ++k) {
      if (Open((current_ + 1 + (rotation_ + k) % (n - 1)) % n)) return;
    }
    Fail(StrCat("no other worker accepted the reconnection after id ", last_event_id_));
  }

  void Fail(std::string why) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (error_.empty()) error_ = std::move(why);
  }

  void Receive(std::string_view bytes) {
    while (!bytes.empty() && fd_ >= 0) {
      switch (phase_) {
        case Phase::kHead: {
          const size_t before = head_.size();
          head_.append(bytes);
          const size_t end = head_.find("\r\n\r\n");
          if (end == std::string::npos) return;
          bytes.remove_prefix(end + 4 - before);
          head_.resize(end + 2);
          if (head_.compare(0, 12, "HTTP/1.1 200") != 0) return Fail("answered " + head_);
          if (HeaderValue(head_, "content-type").find("text/event-stream") != 0) {
            return Fail("not an event stream: " + head_);
          }
          phase_ = HeaderValue(head_, "transfer-encoding") == "chunked" ? Phase::kChunkSize
                                                                        : Phase::kBodyUntilClose;
          break;
        }
        case Phase::kChunkSize: {
          const size_t newline = bytes.find('\n');
          chunk_size_line_.append(bytes.substr(0, newline));
          if (newline == std::string_view::npos) return;
          bytes.remove_prefix(newline + 1);
          chunk_left_ = 0;
          auto [end, error] =
              std::from_chars(chunk_size_line_.data(),
                              chunk_size_line_.data() + chunk_size_line_.size(), chunk_left_, 16);
          if (error != std::errc()) return Fail("bad chunk size line: " + chunk_size_line_);
          chunk_size_line_.clear();
          phase_ = chunk_left_ == 0 ? Phase::kEnded : Phase::kChunkData;
          break;
        }
        case Phase::kChunkData: {
          const size_t take = std::min<uint64_t>(chunk_left_, bytes.size());
          ParseEvents(bytes.substr(0, take));
          bytes.remove_prefix(take);
          chunk_left_ -= take;
          if (chunk_left_ == 0) phase_ = Phase::kChunkEnd;
          break;
        }
        case Phase::kChunkEnd: {
          const size_t newline = bytes.find('\n');
          if (newline == std::string_view::npos) return;
          bytes.remove_prefix(newline + 1);
          phase_ = Phase::kChunkSize;
          break;
        }
        case Phase::kBodyUntilClose:
          ParseEvents(bytes);
          return;
        case Phase::kEnded:
          return;  // The stream ended; the close that follows reconnects.
      }
    }
  }

  void ParseEvents(std::string_view bytes) {
    for (char c : bytes) {
      if (c == '\n' && after_cr_) {
        after_cr_ = false;
        continue;
      }
      after_cr_ = c == '\r';
      if (c == '\r' || c == '\n') {
        Line(line_);
        line_.clear();
      } else {
        line_.push_back(c);
      }
    }
  }

  void Line(std::string_view line) {
    if (line.empty()) return Dispatch();
    if (line.front() == ':') {
      constexpr std::string_view kResumed = ": last-event-id ";
      if (line.substr(0, kResumed.size()) == kResumed) {
        resumed_after_.emplace_back(line.substr(kResumed.size()));
      }
      return;
    }
    const size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "id" && value.find('\0') == std::string_view::npos) id_buffer_ = value;
    if (field == "data") data_seen_ = true;
  }

  void Dispatch() {
    last_event_id_ = id_buffer_;
    if (!data_seen_) return;  // e.g. a heartbeat comment followed by a blank line
    data_seen_ = false;
    std::optional<uint64_t> id = ParseId(last_event_id_);
    if (!id) return Fail("an event without a numeric id: \"" + last_event_id_ + "\"");
    ids_.push_back(*id);
  }

  std::vector<Endpoint> workers_;
  size_t rotation_;
  std::string target_;
  int fd_ = -1;
  size_t current_ = 0;
  int reconnects_ = 0;
  std::string error_;

  Phase phase_ = Phase::kHead;
  std::string head_;
  std::string chunk_size_line_;
  uint64_t chunk_left_ = 0;
  std::string line_;
  bool after_cr_ = false;
  bool data_seen_ = false;
  std::string id_buffer_;
  std::string last_event_id_;
  std::vector<uint64_t> ids_;
  std::vector<std::string> resumed_after_;
};

using Clients = std::vector<std::unique_ptr<EventSourceClient>>;

// Reads every client's socket as data arrives until `done` holds (true), a client gives up or
// `timeout` passes (false).
bool PumpUntil(Clients& clients, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    std::vector<pollfd> fds;
    for (const auto& client : clients) {
      if (client->fd() < 0) return false;
      fds.push_back(pollfd{client->fd(), POLLIN, 0});
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) {
      return false;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents != 0) clients[i]->OnReadable();
    }
  }
  return true;
}

bool Every(const Clients& clients, const std::function<bool(const EventSourceClient&)>& holds) {
  return std::all_of(clients.begin(), clients.end(), [&](const auto& c) { return holds(*c); });
}

std::string Describe(const Clients& clients) {
  std::string out;
  for (size_t i = 0; i < clients.size(); ++i) {
    const EventSourceClient& c = *clients[i];
    StrAppendTo(out, "client ", i, ": worker ", c.worker(), ", ", c.ids().size(), " events, last ",
                c.last_id(), ", reconnects ", c.reconnects(),
                c.error().empty() ? "" : ", error: ", c.error(), "\n");
  }
  return out;
}

class ScaleOutTest : public ::testing::Test {
 protected:
  // Opens clients_, kStreamsPerWorker streams on each worker, SIGKILLs workers[kVictim] once every
  // stream has events, and checks that its clients moved to the survivors and that no client lost
  // or repeated an event.
  void ExpectNoEventLostWhenAWorkerDies(const std::vector<Endpoint>& workers,
                                        ChildProcess& victim) {
    Clients& clients = clients_;
    for (size_t w = 0; w < workers.size(); ++w) {
      for (size_t s = 0; s < kStreamsPerWorker; ++s) {
        clients.push_back(std::make_unique<EventSourceClient>(workers, w, s, kEventsTarget));
      }
    }
    auto victims = [&] {
      std::vector<EventSourceClient*> out;
      for (size_t s = 0; s < kStreamsPerWorker; ++s) {
        out.push_back(clients[kVictim * kStreamsPerWorker + s].get());
      }
      return out;
    }();

    ASSERT_TRUE(PumpUntil(
        clients,
        [&] { return Every(clients, [](auto& c) { return c.last_id() >= kIdsBeforeKill; }); }, 10s))
        << Describe(clients);
    std::vector<uint64_t> last_before_kill;
    for (EventSourceClient* c : victims) last_before_kill.push_back(c->last_id());

    const auto killed_at = Clock::now();
    victim.Signal(SIGKILL);
    // Reaped (pidfd) before reading on, so its listener is surely gone too.
    ASSERT_TRUE(victim.WaitForExit(5s).exited);
    ASSERT_TRUE(PumpUntil(
        clients,
        [&] {
          return std::all_of(victims.begin(), victims.end(),
                             [](auto* c) { return c->reconnects() >= 1; });
        },
        5s))
        << "the dead worker's clients did not notice\n"
        << Describe(clients);
    const auto all_noticed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at);
    RecordProperty("loss_noticed_ms", static_cast<int>(all_noticed.count()));

    ASSERT_TRUE(PumpUntil(
        clients, [&] { return Every(clients, [](auto& c) { return c.last_id() >= kIdsAtEnd; }); },
        15s))
        << Describe(clients);
    // How long after the kill every client, moved or not, was past kIdsAtEnd.
    RecordProperty("all_past_last_id_ms",
                   static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        Clock::now() - killed_at)
                                        .count()));

    for (size_t i = 0; i < clients.size(); ++i) {
      const EventSourceClient& c = *clients[i];
      SCOPED_TRACE(StrCat("client ", i));
      EXPECT_EQ(c.error(), "");
      // Exactly 1, 2, ..., N: none lost across the reconnection, none repeated.
      std::vector<uint64_t> expected(c.ids().size());
      std::iota(expected.begin(), expected.end(), 1);
      EXPECT_EQ(c.ids(), expected);
      const bool was_on_victim = i / kStreamsPerWorker == kVictim;
      EXPECT_EQ(c.reconnects(), was_on_victim ? 1 : 0);
      EXPECT_NE(c.worker(), kVictim);
    }
    for (size_t v = 0; v < victims.size(); ++v) {
      // The backend saw the Last-Event-ID the client sent, through the surviving worker.
      EXPECT_EQ(victims[v]->resumed_after(),
                std::vector<std::string>{std::to_string(last_before_kill[v])})
          << "victim client " << v;
    }
  }

  // The control plane notices the dead worker: it logs "worker ID left gateway" on stdout after
  // marking it disconnected in its registry, so the log line is the event to await (bounded).
  void ExpectControlPlaneListsTheSurvivors(v1::Management::Stub& stub,
                                           const std::filesystem::path& control_plane_stdout,
                                           const std::vector<std::string>& worker_ids) {
    ASSERT_TRUE(WaitForFileContent(control_plane_stdout,
                                   StrCat("worker ", worker_ids[kVictim], " left gateway"), 15s))
        << ReadFile(control_plane_stdout);
    v1::ListGatewayWorkersRequest request;
    request.set_name("edge");
    v1::ListGatewayWorkersResponse response;
    ASSERT_TRUE(stub.ListGatewayWorkers(AuthorizedContext().get(), request, &response).ok());
    int connected = 0;
    for (const v1::GatewayWorker& worker : response.workers()) {
      SCOPED_TRACE(worker.worker_id());
      EXPECT_EQ(worker.connected(), worker.worker_id() != worker_ids[kVictim]);
      connected += worker.connected() ? 1 : 0;
    }
    EXPECT_EQ(response.workers_size(), static_cast<int>(worker_ids.size()));
    EXPECT_EQ(connected, static_cast<int>(worker_ids.size()) - 1);
  }

  // Creates gateway "edge" (tier standard) with an SSE API /feed on `backend_url`; returns the
  // config version that carries it and sets token_.
  uint64_t CreateGatewayAndApi(v1::Management::Stub& stub, const std::string& backend_url) {
    v1::CreateGatewayRequest gateway;
    gateway.mutable_gateway()->set_name("edge");
    gateway.mutable_gateway()->set_tier("standard");
    v1::Gateway created;
    EXPECT_TRUE(stub.CreateGateway(AuthorizedContext().get(), gateway, &created).ok());
    v1::CreateApiRequest api_request;
    api_request.mutable_api()->set_name("feed");
    api_request.mutable_api()->set_path_prefix("/feed");
    api_request.mutable_api()->set_backend_url(backend_url);
    api_request.mutable_api()->set_sse(true);
    api_request.mutable_api()->add_gateways("edge");
    v1::Api api;
    grpc::Status status = stub.CreateApi(AuthorizedContext().get(), api_request, &api);
    EXPECT_TRUE(status.ok()) << status.error_message();
    v1::RotateGatewayTokenRequest rotate;
    rotate.set_name("edge");
    v1::GatewayToken token;
    EXPECT_TRUE(stub.RotateGatewayToken(AuthorizedContext().get(), rotate, &token).ok());
    token_ = token.token();
    return status.ok() ? std::stoull(api.etag()) : 0;
  }

  static bool Applied(ChildProcess& worker, uint64_t version) {
    return WaitForFileContent(worker.stderr_path(),
                              StrCat("applied config version ", version, " from"), 20s);
  }

  TempDir dir_;
  std::string token_;
  // Open until the test ends, so what the backend sees afterwards can be checked too.
  Clients clients_;
};

TEST_F(ScaleOutTest, WhenAWorkerDiesItsClientsReconnectToTheOthersWithLastEventIdAndLoseNoEvent) {
  BackendProcess backend(dir_.path());
  ControlPlane control_plane(dir_.path());
  control_plane.Start();
  auto stub = control_plane.Stub();
  const uint64_t version = CreateGatewayAndApi(*stub, StrCat("http://127.0.0.1:", backend.port()));
  ASSERT_NE(version, 0u);

  const std::vector<std::string> ids = {"w1", "w2", "w3"};
  std::vector<std::unique_ptr<GatewayProcess>> workers;
  std::vector<Endpoint> endpoints;
  for (const std::string& id : ids) {
    workers.push_back(
        GatewayProcess::Join(dir_.path(), control_plane.address(), "edge", token_, id));
    endpoints.push_back({"127.0.0.1", workers.back()->port()});
  }
  for (auto& worker : workers) {
    ASSERT_TRUE(Applied(worker->process(), version)) << worker->process().Stderr();
  }

  ExpectNoEventLostWhenAWorkerDies(endpoints, workers[kVictim]->process());
  if (HasFatalFailure()) return;

  for (size_t w = 0; w < workers.size(); ++w) {
    if (w == kVictim) continue;
    EXPECT_EQ(HttpRequest(workers[w]->admin_port(), "GET", "/readyz").status, 200) << ids[w];
  }
  ExpectControlPlaneListsTheSurvivors(*stub, control_plane.process().stdout_path(), ids);

  // The dead worker's backend streams were released (its sockets closed with it), and no stream
  // leaked: 9 at the start, 3 more on reconnection, 9 open now. The backend long-polls the count.
  const apim::testing::BackendStats stats = backend.Stats(3, std::chrono::seconds(5));
  EXPECT_EQ(stats.open_streams, kWorkers * kStreamsPerWorker);
  EXPECT_EQ(stats.streams_started, (kWorkers + 1) * kStreamsPerWorker);
}

// ---------------------------------------------------------------------------------------------
// The same with each worker in its own network namespace, joined to the host by a veth pair on a
// bridge: the workers reach the control plane and the clients reach the workers over real
// interfaces, not loopback. The sse-test-backend only listens on loopback, so each namespace runs
// its own replica on the same 127.0.0.1 port (the backend is stateless: any replica replays from
// Last-Event-ID, like a backend behind its own load balancer).

std::string Ip() { return "/usr/sbin/ip"; }

// Network namespaces, veth pairs and a bridge made for one test, removed on destruction.
class VethNetwork {
 public:
  explicit VethNetwork(size_t namespaces) {
    const int tag = static_cast<int>(::getpid() % 100000);
    bridge_ = StrCat("aso", tag, "br");
    for (size_t k = 0; k < namespaces; ++k) {
      names_.push_back(StrCat("apim-scale-out-", tag, "-", k));
      host_links_.push_back(StrCat("aso", tag, "h", k));
    }
  }
  ~VethNetwork() {
    for (const std::string& link : host_links_) RunCommand(Ip(), {"link", "del", link});
    for (const std::string& name : names_) RunCommand(Ip(), {"netns", "del", name});
    RunCommand(Ip(), {"link", "del", bridge_});
  }
  VethNetwork(const VethNetwork&) = delete;
  VethNetwork& operator=(const VethNetwork&) = delete;

  // Creates the first namespace; false (with `why`) if this machine cannot.
  bool Probe(std::string& why) {
    CommandResult added = RunCommand(Ip(), {"netns", "add", names_[0]});
    why = added.err;
    return added.exit_code == 0;
  }
  // Everything else; the first failing command's output, or empty.
  std::string Build() {
    // A /24 in 10.231.0.0/16 that no interface of this machine uses yet.
    for (int start = static_cast<int>(::getpid() % 200), tries = 0; subnet_.empty(); ++tries) {
      if (tries == 200) return "no free /24 in 10.231.0.0/16";
      const std::string candidate = StrCat("10.231.", 20 + (start + tries) % 200, ".");
      CommandResult used = RunCommand(Ip(), {"-4", "-o", "addr", "show", "to", candidate + "0/24"});
      if (used.exit_code == 0 && used.out.empty()) subnet_ = candidate;
    }
    std::vector<std::vector<std::string>> commands = {
        {"link", "add", bridge_, "type", "bridge"},
        {"addr", "add", host_address() + "/24", "dev", bridge_},
        {"link", "set", bridge_, "up"}};
    for (size_t k = 0; k < names_.size(); ++k) {
      const std::string inner = StrCat("aso-n", k);
      if (k > 0) commands.push_back({"netns", "add", names_[k]});
      commands.push_back({"link", "add", host_links_[k], "type", "veth", "peer", "name", inner,
                          "netns", names_[k]});
      commands.push_back({"link", "set", host_links_[k], "master", bridge_, "up"});
      commands.push_back({"-n", names_[k], "link", "set", "lo", "up"});
      commands.push_back({"-n", names_[k], "addr", "add", address(k) + "/24", "dev", inner});
      commands.push_back({"-n", names_[k], "link", "set", inner, "up"});
    }
    for (const auto& args : commands) {
      CommandResult result = RunCommand(Ip(), args);
      if (result.exit_code != 0) {
        std::string line = "ip";
        for (const auto& arg : args) StrAppendTo(line, " ", arg);
        return StrCat(line, ": ", result.err);
      }
    }
    return "";
  }

  const std::string& name(size_t k) const { return names_[k]; }
  std::string host_address() const { return subnet_ + "1"; }
  std::string address(size_t k) const { return StrCat(subnet_, 10 + k); }

 private:
  std::string subnet_;
  std::string bridge_;
  std::vector<std::string> names_;
  std::vector<std::string> host_links_;
};

// Waits (bounded, by inotify) for a port file and returns the first number in it.
uint16_t AwaitPort(const std::filesystem::path& port_file, ChildProcess& process) {
  if (!WaitForFile(port_file, 20s)) {
    ADD_FAILURE() << port_file << " never appeared; stderr:\n" << process.Stderr();
    return 0;
  }
  return static_cast<uint16_t>(std::stoi(ReadFile(port_file)));
}

TEST_F(ScaleOutTest,
       WhenAWorkerInItsOwnNetworkNamespaceDiesItsClientsReconnectOverVethAndLoseNoEvent) {
  if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
  VethNetwork network(kWorkers);
  std::string why;
  if (!network.Probe(why)) GTEST_SKIP() << "`ip netns add` does not work here: " << why;
  const std::string build_error = network.Build();
  ASSERT_EQ(build_error, "");
  const std::filesystem::path dir = dir_.path();

  // One backend replica per namespace, all on the port the first one picked.
  std::vector<std::unique_ptr<ChildProcess>> backends;
  uint16_t backend_port = 0;
  for (size_t k = 0; k < kWorkers; ++k) {
    const std::filesystem::path port_file = dir / StrCat("backend", k, ".port");
    backends.push_back(std::make_unique<ChildProcess>(
        Ip(),
        std::vector<std::string>{"netns", "exec", network.name(k), SSE_TEST_BACKEND_BIN, "--listen",
                                 StrCat("127.0.0.1:", backend_port), "--port-file",
                                 port_file.string()},
        dir));
    const uint16_t port = AwaitPort(port_file, *backends.back());
    ASSERT_NE(port, 0);
    if (k == 0) backend_port = port;
  }

  // The control plane listens on the host's bridge address, which every namespace can reach. The
  // bridge is private to this machine, and the test is about failover, not TLS (grpc_tls_test):
  // plaintext there is allowed explicitly.
  const std::filesystem::path control_plane_port_file = dir / "controlplane.port";
  ChildProcess control_plane(
      APIM_CONTROLPLANE_BIN,
      {"--listen", network.host_address() + ":0", "--db", (dir / "apim.db").string(), "--port-file",
       control_plane_port_file.string(), "--allow-insecure"},
      dir, {{"APIM_ADMIN_TOKEN", kTestAdminToken}});
  const uint16_t control_plane_port = AwaitPort(control_plane_port_file, control_plane);
  ASSERT_NE(control_plane_port, 0);
  const std::string control_plane_address = StrCat(network.host_address(), ":", control_plane_port);
  auto stub = v1::Management::NewStub(
      grpc::CreateChannel(control_plane_address, grpc::InsecureChannelCredentials()));
  const uint64_t version = CreateGatewayAndApi(*stub, StrCat("http://127.0.0.1:", backend_port));
  ASSERT_NE(version, 0u);

  const std::vector<std::string> ids = {"w1", "w2", "w3"};
  std::vector<std::unique_ptr<ChildProcess>> workers;
  std::vector<Endpoint> endpoints;
  std::vector<Endpoint> admin_endpoints;
  for (size_t k = 0; k < kWorkers; ++k) {
    const std::filesystem::path port_file = dir / StrCat(ids[k], ".ports");
    workers.push_back(std::make_unique<ChildProcess>(
        Ip(),
        std::vector<std::string>{"netns",
                                 "exec",
                                 network.name(k),
                                 APIM_GATEWAY_BIN,
                                 "--control-plane",
                                 control_plane_address,
                                 "--gateway",
                                 "edge",
                                 "--worker-id",
                                 ids[k],
                                 "--snapshot-cache",
                                 (dir / StrCat(ids[k], ".snapshot")).string(),
                                 "--listen",
                                 network.address(k) + ":0",
                                 "--admin-listen",
                                 network.address(k) + ":0",
                                 "--port-file",
                                 port_file.string(),
                                 "--threads",
                                 "2",
                                 "--allow-insecure"},
        dir, std::map<std::string, std::string>{{"APIM_GATEWAY_TOKEN", token_}}));
    ASSERT_TRUE(WaitForFile(port_file, 20s)) << workers.back()->Stderr();
    std::istringstream ports(ReadFile(port_file));
    uint16_t port = 0, admin_port = 0;
    ports >> port >> admin_port;
    endpoints.push_back({network.address(k), port});
    admin_endpoints.push_back({network.address(k), admin_port});
  }
  for (auto& worker : workers) ASSERT_TRUE(Applied(*worker, version)) << worker->Stderr();

  ExpectNoEventLostWhenAWorkerDies(endpoints, *workers[kVictim]);
  if (HasFatalFailure()) return;

  for (size_t k = 0; k < kWorkers; ++k) {
    if (k == kVictim) continue;
    EXPECT_EQ(HttpStatus(admin_endpoints[k], "/readyz"), 200) << ids[k];
  }
  ExpectControlPlaneListsTheSurvivors(*stub, control_plane.stdout_path(), ids);
}

}  // namespace
}  // namespace apim

// Faults and abuse against the real processes on loopback: a control plane killed in the middle of
// a burst of writes, ten thousand connections that come and go in every way a client can leave,
// and malformed, oversized, slow and ambiguous requests. Each test ends by checking the process
// is still whole: nothing acknowledged lost, no descriptor leaked, the worker still serving.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/str_cat.h"
#include "tests/support/control_plane.h"
#include "tests/support/gateway.h"
#include "tests/support/raw_http.h"
#include "tests/support/worker_health.h"

namespace apim {
namespace {

using apim::testing::ApiJson;
using apim::testing::AuthorizedContext;
using apim::testing::BackendProcess;
using apim::testing::BackendStats;
using apim::testing::ControlPlane;
using apim::testing::GatewayProcess;
using apim::testing::HttpRequest;
using apim::testing::Metric;
using apim::testing::PollUntil;
using apim::testing::RawConnection;
using apim::testing::SnapshotJson;
using apim::testing::TempDir;
using apim::testing::WaitForFileContent;
using apim::testing::WorkerHealth;
using ::testing::AnyOf;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using namespace std::string_literals;

// ---------------------------------------------------------------------------------------------
// Control plane: a SIGKILL during a burst of writes.

// Every name a writer attempted, and which of them the server acknowledged.
struct WriteLog {
  std::mutex mutex;
  std::condition_variable acknowledged_changed;
  std::set<std::string> acknowledged;
  std::set<std::string> unacknowledged;  // Attempted, but the call failed (e.g. the kill).
};

// Creates gateways `prefix`-0, -1, … as fast as the server answers, until a call fails or
// `max_writes` is reached.
void WriteGateways(v1::Management::Stub& stub, const std::string& prefix, int max_writes,
                   WriteLog& log) {
  for (int i = 0; i < max_writes; ++i) {
    v1::CreateGatewayRequest request;
    const std::string name = StrCat(prefix, "-", i);
    request.mutable_gateway()->set_name(name);
    request.mutable_gateway()->set_tier("standard");
    v1::Gateway created;
    const grpc::Status status = stub.CreateGateway(AuthorizedContext().get(), request, &created);
    std::lock_guard lock(log.mutex);
    if (!status.ok()) {
      log.unacknowledged.insert(name);
      return;
    }
    log.acknowledged.insert(name);
    log.acknowledged_changed.notify_all();
  }
}

std::set<std::string> ListAllGateways(v1::Management::Stub& stub) {
  std::set<std::string> names;
  v1::ListRequest request;
  request.set_page_size(1000);
  for (int page = 0; page < 100; ++page) {  // Bounded: far more pages than a burst can write.
    v1::ListGatewaysResponse response;
    const grpc::Status status = stub.ListGateways(AuthorizedContext().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) break;
    for (const v1::Gateway& gateway : response.gateways()) names.insert(gateway.name());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return names;
}

// Runs `sql` on the database read-only and returns the first column of every row, joined by ";".
std::string QueryDatabase(const std::filesystem::path& database, const char* sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    out = StrCat("open failed: ", sqlite3_errmsg(db));
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) != SQLITE_OK) {
    out = StrCat("prepare failed: ", sqlite3_errmsg(db));
  } else {
    while (sqlite3_step(statement) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(statement, 0);
      out += StrCat(out.empty() ? "" : ";", text ? reinterpret_cast<const char*>(text) : "NULL");
    }
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return out;
}

TEST(ControlPlaneFaultTest, ControlPlaneKilledDuringABurstOfWritesLosesNoAcknowledgedChange) {
  TempDir dir;
  ControlPlane control_plane(dir.path());
  control_plane.Start();
  auto stub = control_plane.Stub();

  // Two writers, so that writes are in flight on both sides of the kill.
  constexpr size_t kKillAfter = 200;
  constexpr int kMaxWritesPerWriter = 20000;  // Bounds the burst if the kill never comes.
  WriteLog log;
  std::thread first(WriteGateways, std::ref(*stub), "a", kMaxWritesPerWriter, std::ref(log));
  std::thread second(WriteGateways, std::ref(*stub), "b", kMaxWritesPerWriter, std::ref(log));
  bool reached;
  {
    std::unique_lock lock(log.mutex);
    reached = log.acknowledged_changed.wait_for(
        lock, 30s, [&] { return log.acknowledged.size() >= kKillAfter; });
  }
  const apim::testing::ExitResult killed = control_plane.Stop(SIGKILL);
  first.join();
  second.join();
  ASSERT_TRUE(reached) << "only " << log.acknowledged.size() << " writes acknowledged in 30 s";
  ASSERT_TRUE(killed.exited);
  EXPECT_EQ(killed.code, 128 + SIGKILL);
  // The kill came mid-burst: the writers were stopped by it, not by their bound.
  EXPECT_EQ(log.unacknowledged.size(), 2u);
  const std::set<std::string> acknowledged = log.acknowledged;

  // The file as the crash left it (WAL included) is a sound database.
  EXPECT_EQ(QueryDatabase(control_plane.database(), "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(QueryDatabase(control_plane.database(), "PRAGMA foreign_key_check"), "");

  control_plane.Start();
  stub = control_plane.Stub();
  for (const std::string& name : acknowledged) {
    v1::GetRequest request;
    request.set_name(name);
    v1::Gateway gateway;
    const grpc::Status status = stub->GetGateway(AuthorizedContext().get(), request, &gateway);
    ASSERT_TRUE(status.ok()) << "acknowledged gateway " << name
                             << " lost: " << status.error_message();
    EXPECT_EQ(gateway.tier(), "standard");
    EXPECT_FALSE(gateway.etag().empty());
  }
  // The list agrees with the lookups: every acknowledged gateway, and beyond them at most the
  // writes whose answer the kill cut off (committed or not, both are correct).
  const std::set<std::string> listed = ListAllGateways(*stub);
  for (const std::string& name : acknowledged) EXPECT_TRUE(listed.contains(name)) << name;
  for (const std::string& name : listed) {
    EXPECT_TRUE(acknowledged.contains(name) || log.unacknowledged.contains(name))
        << "gateway " << name << " was never written";
  }
  // And the store still takes writes after the crash.
  v1::CreateGatewayRequest after;
  after.mutable_gateway()->set_name("after-restart");
  after.mutable_gateway()->set_tier("standard");
  v1::Gateway created;
  EXPECT_TRUE(stub->CreateGateway(AuthorizedContext().get(), after, &created).ok());
}

// ---------------------------------------------------------------------------------------------
// Gateway worker: shared pieces.

std::string Snapshot(uint16_t backend_port) {
  return SnapshotJson({ApiJson("orders", backend_port, "", "/base"),
                       ApiJson("feed", backend_port, R"(,"sse":true)", "/base")});
}

size_t OpenDescriptors(pid_t pid) {
  size_t count = 0;
  std::error_code error;
  for (std::filesystem::directory_iterator it(StrCat("/proc/", pid, "/fd"), error), end;
       !error && it != end; it.increment(error)) {
    ++count;
  }
  return count;
}

// An ordinary request every worker here serves with 200.
constexpr char kOrdinary[] = "/orders/json?size=64";

// ---------------------------------------------------------------------------------------------
// Gateway worker: connections that come and go.

class ConnectionChurnTest : public ::testing::Test {
 protected:
  enum class Cycle {
    kConnectAndClose,
    kConnectAndReset,
    kPartialRequestHead,
    kKeepAliveGet,
    kRequestBodyCutShort,
    kStreamUntilFirstEvent,
  };
  static constexpr int kCycleKinds = 6;

  // One cycle on a fresh connection; false if the gateway did not answer as it should.
  bool RunCycle(Cycle cycle, int i) {
    RawConnection client(gateway_.port());
    const bool reset = i % 2 == 1;
    switch (cycle) {
      case Cycle::kConnectAndClose:
        client.Close();
        return true;
      case Cycle::kConnectAndReset:
        client.Close(/*reset=*/true);
        return true;
      case Cycle::kPartialRequestHead:
        client.Send("GET /orders/json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ");
        client.Close(reset);
        return true;
      case Cycle::kKeepAliveGet: {
        // A keep-alive exchange the client ends after the response (the backend connection goes
        // back to the pool).
        client.Send("GET /orders/json?size=64 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        const bool answered = client.ReadUntil("xx\"}", 5s).has_value();
        client.Close(reset);
        return answered;
      }
      case Cycle::kRequestBodyCutShort:
        // The backend connection carries half a request: it must be closed, never pooled.
        client.Send(
            "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
            "only-part-of-the-body");
        client.Close(reset);
        return true;
      case Cycle::kStreamUntilFirstEvent: {
        client.Send("GET /feed/events?interval_ms=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        const bool streamed = client.ReadUntil("\"seq\":1,", 5s).has_value();
        client.Close(reset);
        if (streamed) ++streams_opened_;
        return streamed;
      }
    }
    return false;
  }

  // Runs up to `count` cycles of every kind in turn, for at most `budget`; returns how many ran.
  int RunCycles(int count, std::chrono::seconds budget, int* failures) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    int i = 0;
    for (; i < count && std::chrono::steady_clock::now() < deadline; ++i) {
      if (!RunCycle(static_cast<Cycle>(i % kCycleKinds), i / kCycleKinds)) {
        ++*failures;
        if (*failures > 10) break;  // Something is badly wrong; the details are in the logs.
      }
    }
    return i;
  }

  // Waits until the backend has seen every stream opened so far closed by its client and the
  // worker holds no client connection; false if that does not happen in time.
  bool AwaitQuiet() {
    const BackendStats stats = backend_.Stats(streams_opened_, 10s);
    if (stats.streams_closed_by_client < streams_opened_ || stats.open_streams != 0) {
      ADD_FAILURE() << "backend streams still open: " << stats.open_streams << ", "
                    << stats.streams_closed_by_client << " of " << streams_opened_
                    << " closed by the client";
      return false;
    }
    // The worker updates its gauges as each session ends; there is no event to wait on, so poll
    // briefly (the connections were closed by the client before this point).
    return PollUntil([&] {
      return Metric(gateway_, "apim_active_connections") == 0 &&
             Metric(gateway_, "apim_active_streams") == 0;
    });
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  GatewayProcess gateway_{dir_.path(), Snapshot(backend_.port())};
  WorkerHealth health_{gateway_, kOrdinary};
  uint64_t streams_opened_ = 0;
};

TEST_F(ConnectionChurnTest,
       TenThousandConnectDisconnectCyclesLeakNoDescriptorsOrBackendConnections) {
  int failures = 0;
  // Warm-up: every kind of cycle once per thread and more, so lazily created state (the backend
  // pools, the access log, allocator arenas) exists before the baseline is taken.
  RunCycles(12 * kCycleKinds, 30s, &failures);
  ASSERT_EQ(failures, 0);
  ASSERT_TRUE(AwaitQuiet());
  const pid_t pid = gateway_.process().pid();
  const size_t baseline = OpenDescriptors(pid);
  const size_t backend_baseline = OpenDescriptors(backend_.process().pid());

  constexpr int kCycles = 10000;
  const auto started = std::chrono::steady_clock::now();
  const int ran = RunCycles(kCycles, 45s, &failures);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ran, kCycles) << "only " << ran << " cycles in "
                          << std::chrono::duration_cast<std::chrono::seconds>(took).count() << " s";
  ASSERT_TRUE(AwaitQuiet()) << "the worker still counts open connections: "
                            << Metric(gateway_, "apim_active_connections");

  // Idle keep-alive connections to the backend stay pooled, one set per worker thread (2 here):
  // which thread served the warm-up and which the last cycles is up to the kernel, so the pools
  // may hold a few more sockets now than at the baseline (and the backend their other ends).
  // Anything beyond that is a leak.
  constexpr size_t kPooledSlack = 4;
  size_t now = 0;
  EXPECT_TRUE(PollUntil([&] { return (now = OpenDescriptors(pid)) <= baseline + kPooledSlack; }))
      << "worker descriptors: " << baseline << " after warm-up, " << now << " after " << ran
      << " cycles";
  size_t backend_now = 0;
  EXPECT_TRUE(PollUntil([&] {
    return (backend_now = OpenDescriptors(backend_.process().pid())) <=
           backend_baseline + kPooledSlack;
  })) << "backend descriptors: "
      << backend_baseline << " after warm-up, " << backend_now << " after " << ran << " cycles";
  RecordProperty("worker_descriptors", StrCat(baseline, " -> ", now));
  RecordProperty("backend_descriptors", StrCat(backend_baseline, " -> ", backend_now));
  RecordProperty("streams_opened", std::to_string(streams_opened_));
  RecordProperty(
      "cycles_ms",
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  health_.ExpectRecovered();
}

// ---------------------------------------------------------------------------------------------
// Gateway worker: malformed, oversized, slow and ambiguous requests.

class AbuseTest : public ::testing::Test {
 protected:
  // Sends `bytes` on a fresh connection and returns the status of the answer (0 if none) once
  // the gateway has closed the connection. A gateway that stops reading and closes may reset the
  // connection before everything is sent: that is an answer too.
  int StatusOfAbuse(std::string_view bytes, std::string* received = nullptr) {
    RawConnection client(gateway_.port());
    try {
      client.Send(bytes);
    } catch (const std::runtime_error&) {
    }
    const bool closed = client.WaitForClose(2s);
    EXPECT_TRUE(closed) << "the gateway kept the connection open after a malformed request";
    if (received) *received = client.received();
    const std::string& raw = client.received();
    if (raw.size() < 12 || !raw.starts_with("HTTP/1.1 ")) return 0;
    return std::stoi(raw.substr(9, 3));
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  GatewayProcess gateway_{
      dir_.path(), Snapshot(backend_.port()), {"--request-header-timeout", "1"}};
  WorkerHealth health_{gateway_, kOrdinary};
};

struct AbuseCase {
  const char* name;
  std::string bytes;
  ::testing::Matcher<int> status;
};

std::vector<AbuseCase> AbuseCases() {
  const std::string get = "GET /orders/json HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  const std::string post_chunked =
      "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  // A request for `path` after which the client expects the connection to close.
  const auto target = [](const std::string& path) {
    return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  };
  std::string binary;
  for (int i = 0; i < 512; ++i) binary.push_back(static_cast<char>((i * 37 + 11) % 256));
  return {
      {"headers over 32 KiB", get + "X-Big: " + std::string(40 * 1024, 'a') + "\r\n\r\n", Eq(431)},
      {"many headers over 32 KiB",
       [&] {
         std::string many = get;
         for (int i = 0; i < 4000; ++i) many += StrCat("X-H", i, ": v\r\n");
         return many + "\r\n";
       }(),
       Eq(431)},
      {"request line over 32 KiB",
       "GET /orders/" + std::string(40 * 1024, 'a') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
       AnyOf(414, 431)},
      {"header without colon", get + "Foo bar\r\n\r\n", Eq(400)},
      {"space before the colon", get + "Foo : bar\r\n\r\n", Eq(400)},
      {"NUL in a header value", get + "X-A: a\0b\r\n\r\n"s, Eq(400)},
      {"bare CR in a header value", get + "X-A: a\rb\r\n\r\n", Eq(400)},
      {"bare LF line ends", "GET /orders/json HTTP/1.1\nHost: 127.0.0.1\n\n", Eq(400)},
      {"invalid method characters", "G(T /orders/json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
       Eq(400)},
      {"unknown HTTP version", "GET /orders/json HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
       AnyOf(400, 505)},
      // (The HTTP/2 preface is HTTP/2 with prior knowledge: http2_test covers it and its abuse.)
      {"TLS client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s + binary, Eq(400)},
      {"binary garbage", binary, Eq(400)},
      {"NUL bytes", std::string(64, '\0') + "\r\n\r\n", Eq(400)},
      {"negative Content-Length",
       "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n", Eq(400)},
      {"Content-Length beyond 64 bits",
       "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
       "99999999999999999999999\r\n\r\n",
       Eq(400)},
      {"Content-Length with a sign",
       "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: +3\r\n\r\nabc", Eq(400)},
      {"chunk size not hexadecimal", post_chunked + "zz\r\nabc\r\n0\r\n\r\n", Eq(400)},
      {"chunk size beyond 64 bits", post_chunked + "fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
       Eq(400)},
      {"chunk longer than its size", post_chunked + "3\r\nabcdef\r\n0\r\n\r\n", Eq(400)},
      {"bad chunk after a good one", post_chunked + "3\r\nabc\r\nxyz\r\n", Eq(400)},
      // Two Host lines: a front proxy routing by one and this worker by the other would disagree
      // about which API a request is for (RFC 9112 section 3.2: MUST answer 400).
      {"two Host headers",
       "GET /orders/json HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: other.example\r\n\r\n", Eq(400)},
      // Targets a backend could resolve outside the API, or bytes a client must percent-encode
      // (misbehaving_peers_test checks the backend never sees them).
      {"raw 0xFF byte in the path", target("/orders/json\xff"), Eq(400)},
      {"encoded dot segments", target("/orders/..%2f..%2fetc/passwd"), Eq(400)},
      {"encoded backslash dot segments", target("/orders/%2e%2e%5c%2e%2e%5cwin.ini"), Eq(400)},
      {"dot segment before a fragment", target("/orders/..#x"), Eq(400)},
  };
}

TEST_F(AbuseTest, AbuseGets4xxAndTheWorkerStaysHealthy) {
  for (const AbuseCase& abuse : AbuseCases()) {
    SCOPED_TRACE(abuse.name);
    std::string received;
    EXPECT_THAT(StatusOfAbuse(abuse.bytes, &received), abuse.status) << received;
    if (!received.empty()) {
      EXPECT_THAT(received, HasSubstr("application/problem+json"));
    }
    health_.ExpectRecovered();
  }

  // Slowloris: headers trickled a byte at a time get 408 once the header timeout (1 s) passes,
  // however steadily the bytes keep coming. Each wait for the answer paces the next byte.
  {
    SCOPED_TRACE("slowloris");
    RawConnection client(gateway_.port());
    client.Send("GET /orders/json HTTP/1.1\r\n");
    const std::string trickle = "Host: 127.0.0.1\r\nX-Slow: " + std::string(1000, 'z');
    const auto started = std::chrono::steady_clock::now();
    std::optional<std::string> answer;
    for (size_t i = 0; i < trickle.size() && !answer; ++i) {
      try {
        client.Send(trickle.substr(i, 1));
      } catch (const std::runtime_error&) {
      }
      answer = client.ReadUntil("\r\n\r\n", 100ms);
      if (std::chrono::steady_clock::now() - started > 5s) break;
    }
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(answer) << client.received();
    EXPECT_THAT(*answer, ::testing::StartsWith("HTTP/1.1 408"));
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 3s);
    EXPECT_TRUE(client.WaitForClose(2s));
    health_.ExpectRecovered();
  }

  // Many slow clients at once do not keep an ordinary request waiting, and all get their 408.
  {
    SCOPED_TRACE("many slow clients");
    std::vector<std::unique_ptr<RawConnection>> slow;
    for (int i = 0; i < 200; ++i) {
      slow.push_back(std::make_unique<RawConnection>(gateway_.port()));
      slow.back()->Send("GET /orders/json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    }
    const auto started = std::chrono::steady_clock::now();
    const auto response = HttpRequest(gateway_.port(), "GET", "/orders/json?size=64", "", 5s);
    EXPECT_EQ(response.status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms);
    for (auto& client : slow) {
      auto answer = client->ReadUntil("\r\n\r\n", 5s);
      ASSERT_TRUE(answer) << client->received();
      EXPECT_THAT(*answer, ::testing::StartsWith("HTTP/1.1 408"));
    }
    health_.ExpectRecovered();
  }
}

// Request smuggling: whenever the length of a request body is ambiguous, the worker must refuse
// the request (400) and close the connection, so that bytes one party takes for a body are never
// taken by another for a new request (RFC 9112 sections 6.1 and 6.3).
TEST_F(AbuseTest, AmbiguousRequestFramingIsRefusedSoNothingCanBeSmuggled) {
  const std::string smuggled =
      "GET /orders/echo?smuggled=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
  const std::string post = "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"Content-Length then Transfer-Encoding",
       post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
      {"Transfer-Encoding then Content-Length",
       post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
      {"two Content-Lengths that differ",
       post + "Content-Length: 0\r\nContent-Length: " + std::to_string(smuggled.size()) +
           "\r\n\r\n" + smuggled},
      {"Content-Length list that differs",
       post + "Content-Length: 0, " + std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled},
      {"Transfer-Encoding twice", post +
                                      "Transfer-Encoding: chunked\r\nTransfer-Encoding: "
                                      "chunked\r\n\r\n0\r\n\r\n" +
                                      smuggled},
      // A Transfer-Encoding whose final coding is not chunked leaves the length of a request
      // unknown: RFC 9112 section 6.3 says 400 and close. Read as "no body", the body below is
      // served as a second request.
      {"Transfer-Encoding gzip", post + "Transfer-Encoding: gzip\r\n\r\n" + smuggled},
      {"Transfer-Encoding chunked, gzip",
       post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + smuggled},
      {"Transfer-Encoding xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n" + smuggled},
      // A coding before chunked would be silently dropped on the way to the backend.
      {"Transfer-Encoding gzip, chunked",
       post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled},
      {"Transfer-Encoding identity, chunked",
       post + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + smuggled},
      {"Transfer-Encoding identity with Content-Length",
       post + "Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n" + smuggled},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    std::string received;
    EXPECT_EQ(StatusOfAbuse(bytes, &received), 400) << received;
    EXPECT_THAT(received, Not(HasSubstr("smuggled"))) << "the body was served as a request";
    health_.ExpectRecovered();
  }
  // Nothing smuggled reached the backend: the access log (written in order, before each
  // connection closed) has no such request up to a marker sent last.
  ASSERT_EQ(HttpRequest(gateway_.port(), "GET", "/orders/json?size=1&marker=end").status, 200);
  ASSERT_TRUE(WaitForFileContent(gateway_.process().stdout_path(), "marker=end", 5s));
  EXPECT_THAT(gateway_.process().Stdout(), Not(HasSubstr("smuggled")));
}

// Hop-by-hop tokens in Connection name headers the gateway drops on the way: never the ones it
// needs to frame or route the request it forwards.
TEST_F(AbuseTest, ConnectionTokensCannotStripTheFramingOrHostOfAForwardedRequest) {
  RawConnection client(gateway_.port());
  client.Send(
      "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Connection: close, Content-Length, Transfer-Encoding, Host\r\n"
      "Content-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(client.WaitForClose(5s));
  EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(client.received(), HasSubstr("\"body_bytes\":5"));
  EXPECT_THAT(client.received(), HasSubstr("\"content-length\":\"5\""));
  EXPECT_THAT(client.received(), HasSubstr(StrCat("\"host\":\"127.0.0.1:", backend_.port())));
  health_.ExpectRecovered();
}

}  // namespace
}  // namespace apim

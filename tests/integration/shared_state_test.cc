// Limits counted across every worker of a gateway on a real redis-server: three workers share one
// rate limit, the server may be down at start, killed and restarted under traffic, spoken to over
// TLS and with a password; workers keep serving throughout (fail open) or refuse with 503 when
// told to fail closed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "common/sha256.h"
#include "tests/support/gateway.h"
#include "tests/support/raw_http.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_certificates.h"
#include "tests/support/worker_health.h"

namespace apim {
namespace {

using apim::testing::ApiJson;
using apim::testing::BackendProcess;
using apim::testing::GatewayProcess;
using apim::testing::HeaderValue;
using apim::testing::HttpRequest;
using apim::testing::Metric;
using apim::testing::PolicyJson;
using apim::testing::PollUntil;
using apim::testing::RawConnection;
using apim::testing::RedisOptions;
using apim::testing::RedisServer;
using apim::testing::SnapshotJsonWithTier;
using apim::testing::TempDir;
using apim::testing::TestCa;
using apim::testing::WorkerHealth;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr char kStandard[] =
    R"({"name":"standard","longLivedConnections":true,"idleTimeoutSeconds":240,)"
    R"("heartbeatIntervalSeconds":30})";

// Replies slower than this count as unavailable. The default (50 ms) is for production; here a
// busy machine (or a sanitized build) must not turn a slow reply into a local count.
constexpr char kPatientTimeout[] = "2000";

// A field of the one limit window on `redis` (one policy step counts in each test).
std::string WindowField(const RedisServer& redis, const std::string& field) {
  const std::string key = redis.Cli({"--scan", "--pattern", "apim:window:*"});
  return key.empty() ? "" : redis.Cli({"HGET", key, field});
}

int64_t BytesCharged(const RedisServer& redis) {
  const std::string bytes = WindowField(redis, "bytes");
  return bytes.empty() ? 0 : std::stoll(bytes);
}

class SharedStateTest : public ::testing::Test {
 protected:
  // A snapshot with "orders" limited to `calls` per `period` seconds and "plain" unlimited;
  // `extra` adds fields to the snapshot (e.g. its sharedState).
  std::string Snapshot(int calls, int period = 10, const std::string& extra = "") {
    const std::string limit = "<policies><inbound><rate-limit calls=\"" + std::to_string(calls) +
                              "\" renewal-period=\"" + std::to_string(period) +
                              "\"/></inbound></policies>";
    return SnapshotJsonWithTier(
        kStandard, {ApiJson("orders", backend_.port()), ApiJson("plain", backend_.port())},
        R"("policies":[)" + PolicyJson("api:orders", limit) + "]" + extra);
  }

  // A worker in a directory of its own.
  std::unique_ptr<GatewayProcess> StartWorker(const std::string& snapshot,
                                              std::vector<std::string> args) {
    const auto dir = dir_.path() / ("worker-" + std::to_string(++workers_));
    std::filesystem::create_directories(dir);
    return std::make_unique<GatewayProcess>(dir, snapshot, args);
  }

  static bool Available(const GatewayProcess& worker) {
    return Metric(worker, "apim_shared_state_available") == 1;
  }

  static std::string WriteFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
    return path.string();
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  int workers_ = 0;
};

TEST_F(SharedStateTest, ThreeWorkersAdmitExactlyTheCallsOfOneRateLimit) {
  RedisServer redis(dir_.path());
  std::vector<std::unique_ptr<GatewayProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(
        StartWorker(Snapshot(30), {"--redis", redis.url(), "--shared-state-timeout-ms",
                                   kPatientTimeout, "--shared-state-fail-closed"}));
  }
  for (auto& worker : workers) ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 10s));

  std::map<int, int> statuses;
  std::vector<int> admitted_by_worker(3);
  for (int call = 0; call < 90; ++call) {
    const auto response = HttpRequest(workers[call % 3]->port(), "GET", "/orders/json");
    ++statuses[response.status];
    if (response.status == 200) ++admitted_by_worker[call % 3];
    if (response.status == 429) {
      EXPECT_FALSE(HeaderValue(response.head, "retry-after").empty());
      EXPECT_THAT(response.body, HasSubstr("rate-limited"));
    }
  }
  // Counted per worker, 90 calls would all pass (30 each); shared, exactly 30 in all.
  EXPECT_EQ(statuses[200], 30);
  EXPECT_EQ(statuses[429], 60);
  EXPECT_EQ(statuses.size(), 2u) << "a status other than 200 and 429";
  for (int admitted : admitted_by_worker) EXPECT_EQ(admitted, 10);
  for (auto& worker : workers) {
    EXPECT_TRUE(Available(*worker));
    EXPECT_EQ(Metric(*worker, "apim_shared_state_unavailable_calls_total"), 0);
  }
  // The window's counter is on the server, under the gateway's prefix, expiring with the window.
  const std::string keys = redis.Cli({"--scan", "--pattern", "apim:window:*"});
  ASSERT_THAT(keys, Not(HasSubstr("\n")));
  EXPECT_EQ(redis.Cli({"HGET", keys, "calls"}), "30");
  const int ttl_ms = std::stoi(redis.Cli({"PTTL", keys}));
  EXPECT_GT(ttl_ms, 0);
  EXPECT_LE(ttl_ms, 10'000);
}

TEST_F(SharedStateTest, TheGatewaysSettingInTheSnapshotIsUsedWithoutFlags) {
  RedisServer redis(dir_.path());
  const std::string shared = R"(,"gateway":"edge","sharedState":{"redisAddress":"127.0.0.1:)" +
                             std::to_string(redis.port()) + R"("})";
  auto first = StartWorker(Snapshot(2, 60, shared), {"--shared-state-timeout-ms", kPatientTimeout});
  auto second =
      StartWorker(Snapshot(2, 60, shared), {"--shared-state-timeout-ms", kPatientTimeout});
  ASSERT_TRUE(PollUntil([&] { return Available(*first) && Available(*second); }, 10s));
  EXPECT_EQ(HttpRequest(first->port(), "GET", "/orders/json").status, 200);
  EXPECT_EQ(HttpRequest(second->port(), "GET", "/orders/json").status, 200);
  EXPECT_EQ(HttpRequest(first->port(), "GET", "/orders/json").status, 429);
  EXPECT_EQ(HttpRequest(second->port(), "GET", "/orders/json").status, 429);
  // The key prefix defaults to the gateway's name.
  EXPECT_THAT(redis.Cli({"--scan", "--pattern", "apim:edge:window:*"}), HasSubstr("apim:edge:"));
}

TEST_F(SharedStateTest, RedisDownAtStartCountsLocallyThenSharesOnceItIsUp) {
  RedisServer redis(dir_.path());
  redis.Kill();
  auto worker = StartWorker(Snapshot(3, 60),
                            {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout});
  WorkerHealth health(*worker, "/plain/json");
  EXPECT_EQ(Metric(*worker, "apim_shared_state_configured"), 1);
  EXPECT_FALSE(Available(*worker));
  // Fail open: the limit still holds, counted by this worker alone.
  for (int call = 0; call < 3; ++call) {
    EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 200);
  }
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 429);
  EXPECT_GE(Metric(*worker, "apim_shared_state_unavailable_calls_total"), 4);
  ASSERT_TRUE(PollUntil(
      [&] { return worker->process().Stderr().find("is unavailable") != std::string::npos; }, 5s));

  redis.Start();
  ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 15s));
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 200);
  EXPECT_EQ(WindowField(redis, "calls"), "1");
  const std::string log = worker->process().Stderr();
  EXPECT_THAT(log, HasSubstr("counting limits on redis://127.0.0.1:"));
  // One line per change, not one per attempt to reconnect.
  EXPECT_EQ(std::count_if(log.begin(), log.end(), [](char c) { return c == '\n'; }) < 40, true);
  size_t unavailable_lines = 0;
  for (size_t at = log.find("is unavailable"); at != std::string::npos;
       at = log.find("is unavailable", at + 1)) {
    ++unavailable_lines;
  }
  EXPECT_EQ(unavailable_lines, 1u);
  health.ExpectRecovered();
}

TEST_F(SharedStateTest, WorkersKeepServingWhileRedisIsKilledAndRestarted) {
  RedisServer redis(dir_.path());
  auto first = StartWorker(Snapshot(1000),
                           {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout});
  auto second = StartWorker(Snapshot(1000),
                            {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout});
  ASSERT_TRUE(PollUntil([&] { return Available(*first) && Available(*second); }, 10s));
  WorkerHealth first_health(*first, "/plain/json");
  WorkerHealth second_health(*second, "/plain/json");
  const auto all_served = [&](int calls) {
    for (int call = 0; call < calls; ++call) {
      if (HttpRequest(first->port(), "GET", "/orders/json").status != 200) return false;
      if (HttpRequest(second->port(), "GET", "/orders/json").status != 200) return false;
    }
    return true;
  };
  EXPECT_TRUE(all_served(10));
  EXPECT_EQ(WindowField(redis, "calls"), "20");

  redis.Kill();
  EXPECT_TRUE(all_served(10));
  ASSERT_TRUE(PollUntil([&] { return !Available(*first) && !Available(*second); }, 10s));
  EXPECT_TRUE(all_served(10));

  redis.Start();
  ASSERT_TRUE(PollUntil([&] { return Available(*first) && Available(*second); }, 15s));
  EXPECT_TRUE(all_served(5));
  // The restarted server kept nothing: only the calls since it came back are on it.
  EXPECT_EQ(WindowField(redis, "calls"), "10");
  first_health.ExpectRecovered();
  second_health.ExpectRecovered();
}

TEST_F(SharedStateTest, ARedisThatStopsAnsweringIsLeftAfterTheBoundAndUsedAgainOnceItAnswers) {
  RedisServer redis(dir_.path());
  auto worker =
      StartWorker(Snapshot(1000), {"--redis", redis.url(), "--shared-state-timeout-ms", "200"});
  ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 10s));
  WorkerHealth health(*worker, "/plain/json");
  // Stopped, the server keeps its connections open and answers nothing: a call waits the bound
  // (200 ms), is counted locally, and its thread's connection is dropped; the calls after it on
  // that thread do not wait. (Each of the worker's two threads has its own connection, so each
  // notices once.)
  ASSERT_EQ(::kill(redis.pid(), SIGSTOP), 0);
  const auto timed_call = [&] {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 200);
    return std::chrono::steady_clock::now() - start;
  };
  const auto first = timed_call();
  EXPECT_GE(first, 190ms);
  EXPECT_LT(first, 2s);
  EXPECT_FALSE(Available(*worker));
  EXPECT_THAT(worker->process().Stderr(), HasSubstr("no reply within 200 ms"));
  // Which thread takes a connection is the kernel's choice: over ten more calls, at most the
  // other thread waits once more.
  int waited = 1;
  for (int call = 0; call < 10; ++call) waited += timed_call() >= 190ms ? 1 : 0;
  EXPECT_LE(waited, 2) << "a thread waited for the stopped server more than once";
  EXPECT_GE(Metric(*worker, "apim_shared_state_unavailable_calls_total"), 11);
  ASSERT_EQ(::kill(redis.pid(), SIGCONT), 0);
  ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 15s));
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 200);
  health.ExpectRecovered();
}

TEST_F(SharedStateTest, FailClosedRefusesLimitedCallsWith503WhileRedisIsDown) {
  RedisServer redis(dir_.path());
  auto worker = StartWorker(Snapshot(100), {"--redis", redis.url(), "--shared-state-fail-closed"});
  ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 10s));
  WorkerHealth health(*worker, "/plain/json");
  redis.Kill();
  ASSERT_TRUE(PollUntil([&] { return !Available(*worker); }, 10s));
  const auto refused = HttpRequest(worker->port(), "GET", "/orders/json");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(HeaderValue(refused.head, "content-type"), "application/problem+json");
  EXPECT_THAT(refused.body, HasSubstr("shared-state-unavailable"));
  EXPECT_EQ(HeaderValue(refused.head, "retry-after"), "1");
  // An API no limit counts is not affected.
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/plain/json").status, 200);
  health.ExpectRecovered();
}

TEST_F(SharedStateTest, TlsAndAPasswordToRedis) {
  TestCa ca(dir_.path(), "redis");
  const auto server = ca.Issue("redis-server");
  RedisServer redis(
      dir_.path(),
      RedisOptions{.password = "s3cret pass", .tls_cert = server.cert, .tls_key = server.key});
  const std::string password = WriteFile(dir_.path() / "redis.password", "s3cret pass\n");
  auto worker = StartWorker(Snapshot(2, 60), {"--redis", redis.url(), "--redis-ca-file",
                                              ca.cert().string(), "--redis-password-file", password,
                                              "--shared-state-timeout-ms", kPatientTimeout});
  ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 10s));
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 200);
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 200);
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 429);
  EXPECT_EQ(WindowField(redis, "calls"), "2");

  // A worker that does not trust the server's CA, and one with a wrong password: neither
  // connects, each says why once, and neither log holds a password.
  TestCa other(dir_.path(), "other");
  auto untrusting =
      StartWorker(Snapshot(2, 60), {"--redis", redis.url(), "--redis-ca-file",
                                    other.cert().string(), "--redis-password-file", password});
  const std::string wrong = WriteFile(dir_.path() / "wrong.password", "not it\n");
  auto refused = StartWorker(Snapshot(2, 60), {"--redis", redis.url(), "--redis-ca-file",
                                               ca.cert().string(), "--redis-password-file", wrong});
  ASSERT_TRUE(PollUntil(
      [&] { return untrusting->process().Stderr().find("is unavailable") != std::string::npos; },
      10s));
  ASSERT_TRUE(PollUntil(
      [&] { return refused->process().Stderr().find("is unavailable") != std::string::npos; },
      10s));
  EXPECT_THAT(untrusting->process().Stderr(), HasSubstr("TLS handshake failed"));
  EXPECT_THAT(refused->process().Stderr(), HasSubstr("refused the credentials"));
  for (auto* worker : {untrusting.get(), refused.get()}) {
    EXPECT_FALSE(Available(*worker));
    EXPECT_THAT(worker->process().Stderr(), Not(HasSubstr("s3cret")));
    EXPECT_THAT(worker->process().Stderr(), Not(HasSubstr("not it")));
    EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 200);  // Fail open.
  }
}

// A feed whose subscription "acme" may hold `max_streams` streams, and "plain" for health checks.
std::string StreamCapSnapshot(uint16_t backend_port, int max_streams) {
  return SnapshotJsonWithTier(
      kStandard,
      {ApiJson("feed", backend_port, R"(,"sse":true,"subscriptionRequired":true)"),
       ApiJson("plain", backend_port)},
      R"("subscriptions":[{"name":"acme","apis":["feed"],"keySha256":[")" + Sha256Hex("acme-key") +
          R"("],"maxConcurrentStreams":)" + std::to_string(max_streams) + "}]");
}

// Opens an event stream of "acme" on `port`: the connection once its first event came, or null
// with the status that refused it in `refused`.
std::unique_ptr<RawConnection> OpenStream(uint16_t port, int* refused = nullptr) {
  auto connection = std::make_unique<RawConnection>(port);
  connection->Send(
      "GET /feed/events?interval_ms=200 HTTP/1.1\r\nHost: localhost\r\n"
      "Accept: text/event-stream\r\nOcp-Apim-Subscription-Key: acme-key\r\n\r\n");
  const std::optional<std::string> head = connection->ReadUntil("\r\n\r\n", 5s);
  const int status = head && head->size() > 12 ? std::atoi(head->c_str() + 9) : 0;
  if (status == 200 && connection->ReadUntil("id: 1\n", 5s)) return connection;
  if (refused != nullptr) *refused = status;
  return nullptr;
}

TEST_F(SharedStateTest, ASubscriptionsStreamCapHoldsAcrossWorkers) {
  RedisServer redis(dir_.path());
  auto first = StartWorker(StreamCapSnapshot(backend_.port(), 2),
                           {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout,
                            "--shared-state-fail-closed"});
  auto second = StartWorker(StreamCapSnapshot(backend_.port(), 2),
                            {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout,
                             "--shared-state-fail-closed"});
  ASSERT_TRUE(PollUntil([&] { return Available(*first) && Available(*second); }, 10s));
  auto on_first = OpenStream(first->port());
  auto on_second = OpenStream(second->port());
  ASSERT_TRUE(on_first && on_second);
  // Per worker each could open another; shared, the subscription's two slots are taken.
  int refused = 0;
  EXPECT_EQ(OpenStream(first->port(), &refused), nullptr);
  EXPECT_EQ(refused, 429);
  refused = 0;
  EXPECT_EQ(OpenStream(second->port(), &refused), nullptr);
  EXPECT_EQ(refused, 429);
  EXPECT_EQ(redis.Cli({"ZCARD", redis.Cli({"--scan", "--pattern", "apim:streams:*"})}), "2");
  // A stream that ends gives its slot back, to any worker.
  on_first->Close();
  std::unique_ptr<RawConnection> again;
  EXPECT_TRUE(PollUntil([&] { return (again = OpenStream(second->port())) != nullptr; }, 10s));
  EXPECT_EQ(Metric(*first, "apim_shared_state_unavailable_calls_total"), 0);
}

TEST_F(SharedStateTest, LeasesLiveWithTheirStreamAndComeBackWithinThirtySecondsOfAWorkersDeath) {
  RedisServer redis(dir_.path());
  auto doomed = StartWorker(StreamCapSnapshot(backend_.port(), 1),
                            {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout});
  auto survivor =
      StartWorker(StreamCapSnapshot(backend_.port(), 1),
                  {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout});
  ASSERT_TRUE(PollUntil([&] { return Available(*doomed) && Available(*survivor); }, 10s));
  auto held = OpenStream(doomed->port());
  ASSERT_NE(held, nullptr);
  // Past the lease's 30 s the stream still holds its slot: its worker refreshes the lease.
  const auto opened = std::chrono::steady_clock::now();
  ASSERT_TRUE(held->ReadUntil("id: 180\n", 45s).has_value());  // 200 ms apart: 36 s.
  EXPECT_GE(std::chrono::steady_clock::now() - opened, 31s);
  int refused = 0;
  EXPECT_EQ(OpenStream(survivor->port(), &refused), nullptr);
  EXPECT_EQ(refused, 429);

  // A worker that dies cannot give its lease back: the slot returns once the lease expires.
  doomed->process().Signal(SIGKILL);
  doomed->process().WaitForExit(10s);
  const auto killed = std::chrono::steady_clock::now();
  std::unique_ptr<RawConnection> taken;
  ASSERT_TRUE(PollUntil([&] { return (taken = OpenStream(survivor->port())) != nullptr; }, 40s));
  EXPECT_LE(std::chrono::steady_clock::now() - killed, 32s);
}

// "orders" and the SSE API "feed" under the inbound policy step `quota`, and "plain" unlimited.
std::string QuotaSnapshot(uint16_t backend_port, const std::string& quota) {
  const std::string policy = "<policies><inbound>" + quota + "</inbound></policies>";
  return SnapshotJsonWithTier(
      kStandard,
      {ApiJson("orders", backend_port), ApiJson("feed", backend_port, R"(,"sse":true)"),
       ApiJson("plain", backend_port)},
      R"("policies":[)" + PolicyJson("api:orders", policy) + "," + PolicyJson("api:feed", policy) +
          "]");
}

TEST_F(SharedStateTest, AQuotaOfCallsHoldsAcrossWorkers) {
  RedisServer redis(dir_.path());
  std::vector<std::unique_ptr<GatewayProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(
        StartWorker(QuotaSnapshot(backend_.port(), R"(<quota calls="12" renewal-period="3600"/>)"),
                    {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout,
                     "--shared-state-fail-closed"}));
  }
  for (auto& worker : workers) ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 10s));
  std::map<int, int> statuses;
  for (int call = 0; call < 24; ++call) {
    const auto response = HttpRequest(workers[call % 3]->port(), "GET", "/orders/json");
    ++statuses[response.status];
    if (response.status == 403) {
      EXPECT_THAT(response.body, HasSubstr("quota-exceeded"));
      EXPECT_GE(std::stoi(HeaderValue(response.head, "retry-after")), 3500);
    }
  }
  // Per worker, each would admit 12 (all 24 calls); shared, 12 in all.
  EXPECT_EQ(statuses[200], 12);
  EXPECT_EQ(statuses[403], 12);
  EXPECT_EQ(statuses.size(), 2u) << "a status other than 200 and 403";
  EXPECT_EQ(WindowField(redis, "calls"), "12") << "refused calls are not counted";
  const int64_t ttl_ms =
      std::stoll(redis.Cli({"PTTL", redis.Cli({"--scan", "--pattern", "apim:window:*"})}));
  EXPECT_GT(ttl_ms, 3'500'000);
  EXPECT_LE(ttl_ms, 3'600'000);
  EXPECT_EQ(HttpRequest(workers[0]->port(), "GET", "/plain/json").status, 200);
  for (auto& worker : workers) {
    EXPECT_EQ(Metric(*worker, "apim_shared_state_unavailable_calls_total"), 0);
  }
}

TEST_F(SharedStateTest, AQuotasBandwidthIsSpentByTheBytesOfEveryWorker) {
  RedisServer redis(dir_.path());
  const std::string snapshot =
      QuotaSnapshot(backend_.port(), R"(<quota bandwidth="8" renewal-period="3600"/>)");
  const std::vector<std::string> args{"--redis", redis.url(), "--shared-state-timeout-ms",
                                      kPatientTimeout, "--shared-state-fail-closed"};
  auto first = StartWorker(snapshot, args);
  auto second = StartWorker(snapshot, args);
  ASSERT_TRUE(PollUntil([&] { return Available(*first) && Available(*second); }, 10s));
  // 8 KiB a period: a 5000-byte response on each worker spends it; the bytes count once each
  // response has ended, so the next call waits for the charge to land.
  EXPECT_EQ(HttpRequest(first->port(), "GET", "/orders/json?size=5000").status, 200);
  ASSERT_TRUE(PollUntil([&] { return BytesCharged(redis) >= 5000; }, 10s));
  EXPECT_LT(BytesCharged(redis), 8192);
  EXPECT_EQ(HttpRequest(second->port(), "GET", "/orders/json?size=5000").status, 200);
  ASSERT_TRUE(PollUntil([&] { return BytesCharged(redis) >= 10000; }, 10s));
  for (auto* worker : {first.get(), second.get()}) {
    const auto refused = HttpRequest(worker->port(), "GET", "/orders/json?size=10");
    EXPECT_EQ(refused.status, 403);
    EXPECT_THAT(refused.body, HasSubstr("quota-exceeded"));
  }
  EXPECT_EQ(WindowField(redis, "calls"), "2");
}

TEST_F(SharedStateTest, AStreamIsNotCutByABandwidthQuotaItsBytesCountWhenItEnds) {
  RedisServer redis(dir_.path());
  auto worker =
      StartWorker(QuotaSnapshot(backend_.port(), R"(<quota bandwidth="1" renewal-period="3600"/>)"),
                  {"--redis", redis.url(), "--shared-state-timeout-ms", kPatientTimeout,
                   "--shared-state-fail-closed"});
  ASSERT_TRUE(PollUntil([&] { return Available(*worker); }, 10s));
  RawConnection stream(worker->port());
  stream.Send(
      "GET /feed/events?count=40&interval_ms=20&size=100 HTTP/1.1\r\nHost: localhost\r\n"
      "Accept: text/event-stream\r\n\r\n");
  // 40 events of 100 bytes and more: four times the quota of 1 KiB, all delivered.
  ASSERT_TRUE(stream.ReadUntil("id: 20\n", 10s).has_value());
  EXPECT_EQ(BytesCharged(redis), 0) << "a running stream's bytes are not counted yet";
  ASSERT_TRUE(stream.ReadUntil("id: 40\n", 10s).has_value());
  ASSERT_TRUE(stream.ReadUntil("0\r\n\r\n", 10s).has_value()) << "the stream ended whole";
  ASSERT_TRUE(PollUntil([&] { return BytesCharged(redis) >= 4000; }, 10s));
  const auto refused = HttpRequest(worker->port(), "GET", "/feed/events?count=1");
  EXPECT_EQ(refused.status, 403);
  EXPECT_THAT(refused.body, HasSubstr("quota-exceeded"));
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/plain/json").status, 200);
}

TEST_F(SharedStateTest, ABadRedisFlagIsRefusedAtStart) {
  const auto bad = [&](std::vector<std::string> args, const std::string& says) {
    args.insert(args.begin(), {"--config", (dir_.path() / "none.json").string()});
    auto result = apim::testing::RunCommand(APIM_GATEWAY_BIN, args, {}, 10s);
    EXPECT_EQ(result.exit_code, 64) << result.err;  // EX_USAGE
    EXPECT_THAT(result.err, HasSubstr(says));
  };
  bad({"--redis", "redis://:secret@127.0.0.1:6379"}, "--redis-password-file");
  bad({"--redis", "http://127.0.0.1:6379"}, "another scheme");
  bad({"--redis", "redis://127.0.0.1"}, "has no port");
  bad({"--redis", "redis://127.0.0.1:6379/x"}, "database number");
  bad({"--redis", "redis://127.0.0.1:6379", "--redis-ca-file", "/etc/hostname"}, "rediss://");
}

}  // namespace
}  // namespace apim

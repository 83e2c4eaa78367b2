// The control plane and real workers together: a change made through the Management API reaches
// every worker of the gateway; a snapshot a worker cannot apply is refused and reported while the
// old routes keep serving; workers outlive the control plane and come back to it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "apim/v1/config_discovery.grpc.pb.h"
#include "tests/support/control_plane.h"
#include "tests/support/gateway.h"
#include "tests/support/raw_http.h"

namespace apim {
namespace {

using apim::testing::AuthorizedContext;
using apim::testing::BackendProcess;
using apim::testing::ControlPlane;
using apim::testing::GatewayProcess;
using apim::testing::HttpRequest;
using apim::testing::RawConnection;
using apim::testing::TempDir;
using apim::testing::WaitForFileContent;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int kMaxUnauthenticated = 200;

// The threads a process runs now.
size_t ThreadCount(pid_t pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(tasks),
                                           std::filesystem::directory_iterator()));
}

class ConfigPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control_plane_.AddArgs({"--hello-timeout-seconds", "2", "--max-unauthenticated-streams",
                            std::to_string(kMaxUnauthenticated)});
    control_plane_.Start();
    stub_ = control_plane_.Stub();
    v1::CreateGatewayRequest gateway;
    gateway.mutable_gateway()->set_name("edge");
    gateway.mutable_gateway()->set_tier("standard");
    v1::Gateway created;
    ASSERT_TRUE(stub_->CreateGateway(AuthorizedContext().get(), gateway, &created).ok());
    orders_etag_ = CreateApi("orders", "/orders", "http://127.0.0.1:" + Port());
    v1::RotateGatewayTokenRequest rotate;
    rotate.set_name("edge");
    v1::GatewayToken token;
    ASSERT_TRUE(stub_->RotateGatewayToken(AuthorizedContext().get(), rotate, &token).ok());
    token_ = token.token();
  }

  std::string Port() { return std::to_string(backend_.port()); }

  uint64_t CreateApi(const std::string& name, const std::string& prefix, const std::string& url) {
    v1::CreateApiRequest request;
    request.mutable_api()->set_name(name);
    request.mutable_api()->set_path_prefix(prefix);
    request.mutable_api()->set_backend_url(url);
    request.mutable_api()->set_sse(true);
    request.mutable_api()->add_gateways("edge");
    v1::Api api;
    grpc::Status status = stub_->CreateApi(AuthorizedContext().get(), request, &api);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return std::stoull(api.etag());
  }

  // Moves the orders API to a new prefix; returns the new config version.
  uint64_t MoveOrders(const std::string& prefix) {
    v1::UpdateApiRequest update;
    update.mutable_api()->set_name("orders");
    update.mutable_api()->set_path_prefix(prefix);
    update.mutable_update_mask()->add_paths("path_prefix");
    v1::Api api;
    grpc::Status status = stub_->UpdateApi(AuthorizedContext().get(), update, &api);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return std::stoull(api.etag());
  }

  std::unique_ptr<GatewayProcess> Join(const std::string& worker_id,
                                       const std::string& token = "") {
    return GatewayProcess::Join(dir_.path(), control_plane_.address(), "edge",
                                token.empty() ? token_ : token, worker_id);
  }

  // Awaits the worker's log line saying it applied `version` (or a later one is fine too:
  // versions only grow, and each is logged).
  static bool Applied(GatewayProcess& worker, uint64_t version) {
    return WaitForFileContent(worker.process().stderr_path(),
                              "applied config version " + std::to_string(version) + " from", 20s);
  }

  int Status(GatewayProcess& worker, const std::string& path) {
    return HttpRequest(worker.port(), "GET", path).status;
  }

  std::vector<v1::GatewayWorker> Workers(const std::string& gateway = "edge") {
    v1::ListGatewayWorkersRequest request;
    request.set_name(gateway);
    v1::ListGatewayWorkersResponse response;
    EXPECT_TRUE(stub_->ListGatewayWorkers(AuthorizedContext().get(), request, &response).ok());
    return {response.workers().begin(), response.workers().end()};
  }

  std::string NewToken(const std::string& gateway) {
    v1::RotateGatewayTokenRequest rotate;
    rotate.set_name(gateway);
    v1::GatewayToken token;
    grpc::Status status = stub_->RotateGatewayToken(AuthorizedContext().get(), rotate, &token);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return token.token();
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  ControlPlane control_plane_{dir_.path()};
  std::unique_ptr<v1::Management::Stub> stub_;
  std::string token_;
  uint64_t orders_etag_ = 0;
};

TEST_F(ConfigPushTest, AChangeReachesEveryWorkerOfTheGateway) {
  std::vector<std::unique_ptr<GatewayProcess>> workers;
  for (const char* id : {"w1", "w2", "w3"}) {
    workers.push_back(Join(id));
    ASSERT_TRUE(Applied(*workers.back(), orders_etag_)) << workers.back()->process().Stderr();
  }
  const uint64_t version = MoveOrders("/v2/orders");
  for (auto& worker : workers) {
    ASSERT_TRUE(Applied(*worker, version)) << worker->process().Stderr();
    EXPECT_EQ(Status(*worker, "/v2/orders/events?count=1&interval_ms=1"), 200);
    EXPECT_EQ(Status(*worker, "/orders/events?count=1&interval_ms=1"), 404);
  }
  std::vector<v1::GatewayWorker> listed = Workers();
  ASSERT_EQ(listed.size(), 3u);
  for (const auto& worker : listed) {
    EXPECT_TRUE(worker.connected());
    EXPECT_GE(worker.acked_version(), version) << worker.worker_id();
  }
}

TEST_F(ConfigPushTest, ASnapshotAWorkerCannotApplyIsRefusedAndTheOldRoutesKeepServing) {
  auto worker = Join("w1");
  ASSERT_TRUE(Applied(*worker, orders_etag_));
  // A client certificate the control plane can check (it parses, its key matches) but a worker
  // cannot use: OpenSSL's default security level refuses a 512-bit RSA key.
  const std::filesystem::path key = dir_.path() / "weak.key";
  const std::filesystem::path cert = dir_.path() / "weak.crt";
  ASSERT_EQ(testing::RunCommand("/usr/bin/openssl", {"req", "-x509", "-newkey", "rsa:512", "-nodes",
                                                     "-keyout", key.string(), "-out", cert.string(),
                                                     "-days", "2", "-subj", "/CN=weak"})
                .exit_code,
            0);
  v1::CreateApiRequest request;
  request.mutable_api()->set_name("secure");
  request.mutable_api()->set_path_prefix("/secure");
  request.mutable_api()->set_backend_url("https://127.0.0.1:" + Port());
  request.mutable_api()->add_gateways("edge");
  request.mutable_api()->mutable_backend_tls()->set_client_certificate(testing::ReadFile(cert));
  request.mutable_api()->mutable_backend_tls()->set_client_key(testing::ReadFile(key));
  v1::Api api;
  grpc::Status created = stub_->CreateApi(AuthorizedContext().get(), request, &api);
  ASSERT_TRUE(created.ok()) << created.error_message();
  const uint64_t refused = std::stoull(api.etag());
  ASSERT_TRUE(WaitForFileContent(worker->process().stderr_path(),
                                 "refused config version " + std::to_string(refused), 20s));
  EXPECT_EQ(Status(*worker, "/orders/events?count=1&interval_ms=1"), 200);
  EXPECT_EQ(Status(*worker, "/secure/events"), 404);
  // The NACK reaches the control plane's view of its workers (awaited by the log line above;
  // the registry is updated before the control plane logs it).
  ASSERT_TRUE(WaitForFileContent(control_plane_.process().stdout_path(),
                                 "refused version " + std::to_string(refused), 20s));
  std::vector<v1::GatewayWorker> listed = Workers();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].nacked_version(), refused);
  EXPECT_THAT(listed[0].last_nack_error(),
              HasSubstr("the backend client certificate or key cannot be used"));
  EXPECT_EQ(listed[0].acked_version(), orders_etag_);
}

TEST_F(ConfigPushTest, WorkersKeepServingWhenTheControlPlaneIsKilled) {
  auto worker = Join("w1");
  ASSERT_TRUE(Applied(*worker, orders_etag_));
  control_plane_.Stop(SIGKILL);
  EXPECT_EQ(Status(*worker, "/orders/events?count=1&interval_ms=1"), 200);
  EXPECT_EQ(HttpRequest(worker->admin_port(), "GET", "/readyz").status, 200);
}

TEST_F(ConfigPushTest, AWorkerRestartedWhileTheControlPlaneIsDownServesItsCache) {
  auto worker = Join("w1");
  ASSERT_TRUE(Applied(*worker, orders_etag_));
  control_plane_.Stop(SIGKILL);
  worker->process().Signal(SIGTERM);
  ASSERT_TRUE(worker->process().WaitForExit(10s).exited);

  auto restarted = Join("w1");
  EXPECT_EQ(HttpRequest(restarted->admin_port(), "GET", "/readyz").status, 200);
  EXPECT_EQ(Status(*restarted, "/orders/events?count=1&interval_ms=1"), 200);
  EXPECT_THAT(HttpRequest(restarted->admin_port(), "GET", "/metrics").body,
              HasSubstr("apim_config_from_cache 1"));
}

TEST_F(ConfigPushTest, ACorruptCacheIsReportedAndIgnored) {
  {
    std::ofstream cache(dir_.path() / "w1.snapshot");
    cache << "APIM-SNAPSHOT-1\n" << std::string(64, '0') << "\ngarbage";
  }
  control_plane_.Stop(SIGKILL);
  auto worker = Join("w1");
  ASSERT_TRUE(
      WaitForFileContent(worker->process().stderr_path(), "ignoring the snapshot cache", 10s));
  EXPECT_EQ(HttpRequest(worker->admin_port(), "GET", "/readyz").status, 503);
}

TEST_F(ConfigPushTest, WorkersReconnectToARestartedControlPlaneAndConverge) {
  auto w1 = Join("w1");
  auto w2 = Join("w2");
  ASSERT_TRUE(Applied(*w1, orders_etag_));
  ASSERT_TRUE(Applied(*w2, orders_etag_));
  const uint16_t port = control_plane_.port();
  control_plane_.Stop(SIGKILL);
  control_plane_.Start(port);
  stub_ = control_plane_.Stub();
  const uint64_t version = MoveOrders("/v3/orders");
  for (GatewayProcess* worker : {w1.get(), w2.get()}) {
    ASSERT_TRUE(Applied(*worker, version)) << worker->process().Stderr();
    EXPECT_EQ(Status(*worker, "/v3/orders/events?count=1&interval_ms=1"), 200);
  }
}

TEST_F(ConfigPushTest, OpenStreamsSurviveConfigPushes) {
  auto worker = Join("w1");
  ASSERT_TRUE(Applied(*worker, orders_etag_));
  RawConnection stream(worker->port());
  stream.Send("GET /orders/events?interval_ms=50 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(stream.ReadUntil("\"seq\":1,", 5s));
  const uint64_t version = MoveOrders("/v4/orders");
  ASSERT_TRUE(Applied(*worker, version));
  // The stream opened under the old route keeps receiving events.
  EXPECT_TRUE(stream.ReadUntil("\"seq\":6,", 5s)) << stream.received();
}

TEST_F(ConfigPushTest, AWrongGatewayTokenIsRefused) {
  auto worker = Join("intruder", "not-the-token-at-all");
  ASSERT_TRUE(WaitForFileContent(worker->process().stderr_path(),
                                 "control plane refused this worker", 10s));
  EXPECT_EQ(HttpRequest(worker->admin_port(), "GET", "/readyz").status, 503);
  EXPECT_TRUE(Workers().empty());
}

// Config streams that never say hello (no token, so anyone can open them) hold no thread each,
// end after the hello deadline, and past a cap are refused at once; workers join all the while.
TEST_F(ConfigPushTest, StreamsThatNeverSayHelloHoldNoThreadsAndEndAtTheHelloDeadline) {
  const pid_t pid = control_plane_.process().pid();
  const size_t threads_before = ThreadCount(pid);
  constexpr int kConnections = 4;
  constexpr int kStreamsPerConnection = (kMaxUnauthenticated + 20) / kConnections;
  struct Silent {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::ControlPlaneMessage>> stream;
  };
  std::vector<std::unique_ptr<v1::ConfigDiscovery::Stub>> stubs;
  std::vector<std::unique_ptr<Silent>> silent;
  for (int c = 0; c < kConnections; ++c) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // A connection of its own.
    stubs.push_back(v1::ConfigDiscovery::NewStub(grpc::CreateCustomChannel(
        control_plane_.address(), grpc::InsecureChannelCredentials(), arguments)));
    for (int i = 0; i < kStreamsPerConnection; ++i) {
      auto one = std::make_unique<Silent>();
      one->context.set_deadline(std::chrono::system_clock::now() + 20s);
      one->stream = stubs.back()->Stream(&one->context);
      silent.push_back(std::move(one));
    }
  }
  // The most threads the control plane ran while the streams were open.
  std::atomic<bool> measuring = true;
  std::atomic<size_t> most_threads = ThreadCount(pid);
  std::thread sampler([&] {
    while (measuring) {
      most_threads = std::max(most_threads.load(), ThreadCount(pid));
      std::this_thread::sleep_for(20ms);  // A sampling period, not synchronisation.
    }
  });
  // A worker joins while they wait, and management calls are answered.
  auto worker = Join("w1");
  EXPECT_TRUE(Applied(*worker, orders_etag_)) << worker->process().Stderr();

  std::map<grpc::StatusCode, int> endings;
  for (auto& one : silent) {
    v1::ControlPlaneMessage message;
    EXPECT_FALSE(one->stream->Read(&message));
    grpc::Status status = one->stream->Finish();
    ++endings[status.error_code()];
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      EXPECT_THAT(status.error_message(), HasSubstr("hello: not received in time"));
    }
  }
  measuring = false;
  sampler.join();
  EXPECT_EQ(endings[grpc::StatusCode::DEADLINE_EXCEEDED], kMaxUnauthenticated);
  EXPECT_EQ(endings[grpc::StatusCode::RESOURCE_EXHAUSTED],
            kConnections * kStreamsPerConnection - kMaxUnauthenticated);
  std::cout << "control plane threads: " << threads_before << " before, at most "
            << most_threads.load() << " with " << silent.size() << " silent streams open\n";
  EXPECT_LT(most_threads.load(), threads_before + 20);
  EXPECT_EQ(Workers().size(), 1u);
  EXPECT_EQ(Status(*worker, "/orders/events?count=1&interval_ms=1"), 200);
}

TEST_F(ConfigPushTest, RotatingTheTokenCutsWorkersJoinedWithTheOldOneAndTheyKeepServing) {
  auto old_worker = Join("w1");
  ASSERT_TRUE(Applied(*old_worker, orders_etag_));
  const std::string new_token = NewToken("edge");
  ASSERT_TRUE(WaitForFileContent(old_worker->process().stderr_path(),
                                 "no longer valid for gateway \"edge\"", 10s))
      << old_worker->process().Stderr();
  std::vector<v1::GatewayWorker> listed = Workers();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_FALSE(listed[0].connected());
  EXPECT_THAT(listed[0].disconnect_reason(), HasSubstr("rotated"));
  // It retries with the old token and is refused; a change no longer reaches it, while a worker
  // with the new token gets it. The old one keeps serving what it had (static stability).
  ASSERT_TRUE(WaitForFileContent(old_worker->process().stderr_path(),
                                 "not a valid token for gateway \"edge\"", 10s));
  const uint64_t version = MoveOrders("/v5/orders");
  auto new_worker = Join("w2", new_token);
  ASSERT_TRUE(Applied(*new_worker, version)) << new_worker->process().Stderr();
  EXPECT_EQ(Status(*new_worker, "/v5/orders/events?count=1&interval_ms=1"), 200);
  EXPECT_EQ(Status(*old_worker, "/orders/events?count=1&interval_ms=1"), 200);
  EXPECT_THAT(HttpRequest(old_worker->admin_port(), "GET", "/metrics").body,
              HasSubstr("apim_config_version " + std::to_string(orders_etag_)));
  for (const v1::GatewayWorker& worker : Workers()) {
    EXPECT_EQ(worker.connected(), worker.worker_id() == "w2") << worker.worker_id();
  }
}

// Two gateways' workers may share a worker id: each is listed under its own gateway.
TEST_F(ConfigPushTest, WorkersOfDifferentGatewaysWithTheSameIdAreListedApart) {
  auto edge_worker = Join("shared-id");
  ASSERT_TRUE(Applied(*edge_worker, orders_etag_));
  v1::CreateGatewayRequest gateway;
  gateway.mutable_gateway()->set_name("other");
  gateway.mutable_gateway()->set_tier("standard");
  v1::Gateway created;
  ASSERT_TRUE(stub_->CreateGateway(AuthorizedContext().get(), gateway, &created).ok());
  std::filesystem::create_directories(dir_.path() / "other");
  auto other_worker = GatewayProcess::Join(dir_.path() / "other", control_plane_.address(), "other",
                                           NewToken("other"), "shared-id");
  ASSERT_TRUE(
      WaitForFileContent(other_worker->process().stderr_path(), "applied config version", 20s))
      << other_worker->process().Stderr();
  for (const auto& [name, process] :
       {std::pair{"edge", edge_worker.get()}, std::pair{"other", other_worker.get()}}) {
    std::vector<v1::GatewayWorker> listed = Workers(name);
    ASSERT_EQ(listed.size(), 1u) << name;
    EXPECT_EQ(listed[0].gateway(), name);
    EXPECT_TRUE(listed[0].connected());
    EXPECT_THAT(listed[0].address(), HasSubstr(":" + std::to_string(process->port())));
  }
}

// A rule made stricter must not strand what is stored: a document that breaks it is reported (at
// start-up and as a warning on Get and List), still pushed and served, and only a new write that
// leaves it broken is refused.
TEST_F(ConfigPushTest, ADocumentStoredBeforeAStricterRuleIsStillServedAndReported) {
  v1::CreatePolicyRequest create;
  create.mutable_policy()->set_scope("api:orders");
  create.mutable_policy()->set_xml(
      "<policies>\n<outbound>\n<set-header name=\"X-Legacy\"><value>legacy</value></set-header>"
      "\n</outbound>\n</policies>");
  v1::Policy policy;
  ASSERT_TRUE(stub_->CreatePolicy(AuthorizedContext().get(), create, &policy).ok());
  const uint64_t version = std::stoull(policy.etag());
  const uint16_t port = control_plane_.port();
  control_plane_.Stop(SIGTERM);
  {
    // What an older control plane let through, stored as it stored it.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(control_plane_.database().c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db,
                           "UPDATE apis SET display_name = char(27) || '[2Jwiped' "
                           "WHERE name = 'orders';"
                           "UPDATE policies SET xml = replace(xml, 'legacy', 'leg' || char(127) "
                           "|| 'acy');",
                           nullptr, nullptr, &error),
              SQLITE_OK)
        << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }
  control_plane_.Start(port);
  stub_ = control_plane_.Stub();
  EXPECT_TRUE(WaitForFileContent(control_plane_.process().stdout_path(),
                                 "api \"orders\": stored before a rule became stricter", 10s))
      << control_plane_.process().Stderr();
  EXPECT_TRUE(WaitForFileContent(control_plane_.process().stdout_path(),
                                 "policy \"api:orders\": stored before a rule became stricter",
                                 10s));

  v1::GetRequest get;
  get.set_name("orders");
  v1::Api api;
  ASSERT_TRUE(stub_->GetApi(AuthorizedContext().get(), get, &api).ok());
  ASSERT_EQ(api.warnings_size(), 1);
  EXPECT_THAT(api.warnings(0), HasSubstr("api.display_name: must not contain control characters"));
  v1::ListPoliciesResponse policies;
  ASSERT_TRUE(stub_->ListPolicies(AuthorizedContext().get(), v1::ListRequest(), &policies).ok());
  ASSERT_EQ(policies.policies_size(), 1);
  ASSERT_EQ(policies.policies(0).warnings_size(), 1);
  EXPECT_THAT(policies.policies(0).warnings(0), HasSubstr("policy.xml: line 3: value:"));

  // Still pushed and served as before.
  auto worker = Join("w1");
  ASSERT_TRUE(Applied(*worker, version)) << worker->process().Stderr();
  EXPECT_EQ(Status(*worker, "/orders/events?count=1&interval_ms=1"), 200);

  // A write that leaves it broken is refused, naming the field; one that fixes it is taken.
  v1::UpdateApiRequest update;
  update.mutable_api()->set_name("orders");
  update.mutable_api()->set_description("touched");
  update.mutable_update_mask()->add_paths("description");
  grpc::Status status = stub_->UpdateApi(AuthorizedContext().get(), update, &api);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::StartsWith("api.display_name:"));
  update.mutable_api()->set_display_name("Orders");
  update.mutable_update_mask()->add_paths("display_name");
  status = stub_->UpdateApi(AuthorizedContext().get(), update, &api);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(api.warnings_size(), 0);
}

}  // namespace
}  // namespace apim

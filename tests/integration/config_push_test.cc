// The control plane and real workers together: a change made through the Management API reaches
// every worker of the gateway; a snapshot a worker cannot apply is refused and reported while the
// old routes keep serving; workers outlive the control plane and come back to it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

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

class ConfigPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
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

  std::vector<v1::GatewayWorker> Workers() {
    v1::ListGatewayWorkersRequest request;
    request.set_name("edge");
    v1::ListGatewayWorkersResponse response;
    EXPECT_TRUE(stub_->ListGatewayWorkers(AuthorizedContext().get(), request, &response).ok());
    return {response.workers().begin(), response.workers().end()};
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
  // The control plane accepts https backends; this worker cannot serve them yet.
  const uint64_t refused = CreateApi("secure", "/secure", "https://127.0.0.1:" + Port());
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
  EXPECT_THAT(listed[0].last_nack_error(), HasSubstr("https backends are not supported"));
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

}  // namespace
}  // namespace apim

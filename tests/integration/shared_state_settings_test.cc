// A gateway's shared state (the Redis server its workers count on) on the real control plane,
// driven with apimctl and gRPC: every field is checked when written (the error names it and
// nothing changes), the password is never returned by Get or List nor exported, a write that
// leaves it out keeps it (import included) while naming it sets or clears it, and the setting
// reaches the gateway's workers in the snapshot, password included, on every change.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/control_plane.h"
#include "tests/support/fake_worker.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"

namespace apim::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPassword[] = "correct horse battery staple";
// A part of kPassword no other output holds by chance.
constexpr char kPasswordPart[] = "horse battery";

class SharedStateSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control_plane_.Start();
    stub_ = control_plane_.Stub();
    std::ofstream(password_file_) << kPassword << "\n";
  }

  CommandResult Apimctl(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"--server", control_plane_.address()});
    return RunCommand(APIMCTL_BIN, args, {{"APIM_TOKEN", kTestAdminToken}},
                      std::chrono::seconds(30), stdin_text);
  }

  // Runs apimctl and expects success.
  CommandResult Ok(std::vector<std::string> args, const std::string& stdin_text = "") {
    CommandResult result = Apimctl(args, stdin_text);
    EXPECT_EQ(result.exit_code, 0) << ::testing::PrintToString(args) << ": " << result.err;
    return result;
  }

  // Gateway edge with every shared-state flag but the key prefix.
  void CreateEdge() {
    Ok({"gateway", "create", "edge", "--tier", "standard", "--redis-address", "redis.internal:6380",
        "--redis-tls", "--redis-ca-file", ca_.cert().string(), "--redis-user", "apim",
        "--redis-password-file", password_file_, "--redis-database", "2"});
  }

  grpc::Status GetGateway(const std::string& name, v1::Gateway& gateway) {
    v1::GetRequest request;
    request.set_name(name);
    return stub_->GetGateway(AuthorizedContext().get(), request, &gateway);
  }

  v1::Gateway Get(const std::string& name) {
    v1::Gateway gateway;
    grpc::Status status = GetGateway(name, gateway);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return gateway;
  }

  grpc::Status Update(const v1::Gateway& gateway, const std::vector<std::string>& mask,
                      v1::Gateway* updated = nullptr) {
    v1::UpdateGatewayRequest request;
    *request.mutable_gateway() = gateway;
    for (const std::string& path : mask) request.mutable_update_mask()->add_paths(path);
    v1::Gateway ignored;
    return stub_->UpdateGateway(AuthorizedContext().get(), request,
                                updated != nullptr ? updated : &ignored);
  }

  // A worker of gateway edge, joined with a fresh token.
  std::unique_ptr<FakeWorker> JoinEdge() {
    v1::RotateGatewayTokenRequest rotate;
    rotate.set_name("edge");
    v1::GatewayToken token;
    grpc::Status status = stub_->RotateGatewayToken(AuthorizedContext().get(), rotate, &token);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return std::make_unique<FakeWorker>(control_plane_.address(), token.token());
  }

  TempDir dir_;
  ControlPlane control_plane_{dir_.path()};
  std::unique_ptr<v1::Management::Stub> stub_;
  TestCa ca_{dir_.path(), "redis"};
  std::string password_file_ = (dir_.path() / "redis.password").string();
};

TEST_F(SharedStateSettingsTest, ThePasswordIsStoredButNeverShownNorExported) {
  CreateEdge();

  CommandResult table = Ok({"gateway", "get", "edge"});
  EXPECT_THAT(table.out, HasSubstr("SHARED-STATE"));
  EXPECT_THAT(table.out, HasSubstr("redis_address=redis.internal:6380 tls=true ca_certificate=("));
  EXPECT_THAT(table.out, HasSubstr("username=apim database=2 has_password=true"));
  EXPECT_THAT(Ok({"gateway", "get", "edge", "-o", "json"}).out,
              HasSubstr("\"has_password\": true"));
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"gateway", "create", "other", "--tier", "basic"},
                                             {"gateway", "get", "edge"},
                                             {"gateway", "list"},
                                             {"gateway", "get", "edge", "-o", "json"},
                                             {"gateway", "list", "-o", "json"},
                                             {"gateway", "update", "edge", "--redis-database", "3"},
                                             {"export"}}) {
    EXPECT_THAT(Ok(args).out, Not(HasSubstr(kPasswordPart))) << ::testing::PrintToString(args);
  }
  const std::string exported = Ok({"export"}).out;
  EXPECT_THAT(exported, HasSubstr("\"redis_address\": \"redis.internal:6380\""));
  EXPECT_THAT(exported, HasSubstr("\"has_password\": true"));

  const v1::Gateway gateway = Get("edge");
  EXPECT_EQ(gateway.shared_state().password(), "");
  EXPECT_TRUE(gateway.shared_state().has_password());
  EXPECT_TRUE(gateway.shared_state().tls());
  EXPECT_EQ(gateway.shared_state().username(), "apim");
  EXPECT_EQ(gateway.shared_state().database(), 3u);
  EXPECT_EQ(gateway.shared_state().ca_certificate(), ReadFile(ca_.cert()));
  v1::ListGatewaysResponse listed;
  ASSERT_TRUE(stub_->ListGateways(AuthorizedContext().get(), v1::ListRequest(), &listed).ok());
  ASSERT_EQ(listed.gateways_size(), 2);
  EXPECT_EQ(listed.gateways(0).shared_state().password(), "");
  EXPECT_TRUE(listed.gateways(0).shared_state().has_password());
  EXPECT_FALSE(listed.gateways(1).has_shared_state()) << "gateway other has none";
}

TEST_F(SharedStateSettingsTest, TheSnapshotCarriesThePasswordAndEveryChangeIsPushed) {
  CreateEdge();
  std::unique_ptr<FakeWorker> worker = JoinEdge();

  v1::Snapshot snapshot = worker->Next();
  ASSERT_TRUE(snapshot.has_shared_state()) << snapshot.DebugString();
  const v1::SharedState& shared = snapshot.shared_state();
  EXPECT_EQ(shared.redis_address(), "redis.internal:6380");
  EXPECT_TRUE(shared.tls());
  EXPECT_EQ(shared.ca_certificate(), ReadFile(ca_.cert()));
  EXPECT_EQ(shared.username(), "apim");
  EXPECT_EQ(shared.password(), kPassword) << "the file's line ending is not part of it";
  EXPECT_EQ(shared.database(), 2u);
  EXPECT_EQ(shared.key_prefix(), "apim:edge:") << "the default, named after the gateway";
  const uint64_t first = snapshot.version();

  Ok({"gateway", "update", "edge", "--redis-key-prefix", "tenant-a:"});
  snapshot = worker->Next();
  EXPECT_GT(snapshot.version(), first);
  EXPECT_EQ(snapshot.shared_state().key_prefix(), "tenant-a:");
  EXPECT_EQ(snapshot.shared_state().password(), kPassword);

  Ok({"gateway", "update", "edge", "--no-shared-state"});
  snapshot = worker->Next();
  EXPECT_FALSE(snapshot.has_shared_state()) << snapshot.DebugString();
}

TEST_F(SharedStateSettingsTest, WritesKeepTheStoredPasswordUnlessTheyNameItOrClearTheSetting) {
  CreateEdge();

  // One field changed: the others stay, the password too.
  Ok({"gateway", "update", "edge", "--redis-address", "redis-2.internal:6379"});
  v1::Gateway gateway = Get("edge");
  EXPECT_EQ(gateway.shared_state().redis_address(), "redis-2.internal:6379");
  EXPECT_TRUE(gateway.shared_state().tls());
  EXPECT_TRUE(gateway.shared_state().has_password());

  // The whole setting replaced (update_mask "shared_state") without a password keeps it.
  v1::Gateway replacement;
  replacement.set_name("edge");
  replacement.mutable_shared_state()->set_redis_address("redis-3.internal:6379");
  replacement.mutable_shared_state()->set_has_password(false);  // Output only: ignored.
  ASSERT_TRUE(Update(replacement, {"shared_state"}, &gateway).ok());
  EXPECT_EQ(gateway.shared_state().redis_address(), "redis-3.internal:6379");
  EXPECT_FALSE(gateway.shared_state().tls());
  EXPECT_EQ(gateway.shared_state().username(), "");
  EXPECT_TRUE(gateway.shared_state().has_password());
  EXPECT_EQ(gateway.shared_state().password(), "");

  // So does a whole gateway sent back as Get returned it (an empty update_mask).
  gateway.set_description("counted on Redis");
  ASSERT_TRUE(Update(gateway, {}, &gateway).ok());
  EXPECT_TRUE(gateway.shared_state().has_password());

  // Naming shared_state.password sets it to what is sent, nothing included.
  v1::Gateway no_password;
  no_password.set_name("edge");
  ASSERT_TRUE(Update(no_password, {"shared_state.password"}, &gateway).ok());
  EXPECT_FALSE(gateway.shared_state().has_password());
  EXPECT_EQ(gateway.shared_state().redis_address(), "redis-3.internal:6379");

  // A new one from standard input: the first line, without its CRLF.
  Ok({"gateway", "update", "edge", "--redis-password-file", "-"}, "from stdin\r\n");
  std::unique_ptr<FakeWorker> worker = JoinEdge();
  EXPECT_EQ(worker->Next().shared_state().password(), "from stdin");
  Ok({"gateway", "update", "edge", "--no-redis-password"});
  EXPECT_EQ(worker->Next().shared_state().password(), "");

  // Clearing the setting drops the password with it.
  Ok({"gateway", "update", "edge", "--redis-password-file", password_file_});
  EXPECT_EQ(worker->Next().shared_state().password(), kPassword);
  Ok({"gateway", "update", "edge", "--no-shared-state"});
  EXPECT_FALSE(Get("edge").has_shared_state());
  EXPECT_FALSE(worker->Next().has_shared_state());
  Ok({"gateway", "update", "edge", "--redis-address", "redis.internal:6380"});
  EXPECT_FALSE(Get("edge").shared_state().has_password());
}

TEST_F(SharedStateSettingsTest, ImportKeepsTheStoredPasswordAndAnExportChangesNothing) {
  CreateEdge();
  const std::string exported = Ok({"export"}).out;

  EXPECT_THAT(Ok({"import", "-"}, exported).out, HasSubstr("0 created, 0 updated, 0 deleted"));

  // A document written by hand, without a word about the password, keeps it too.
  const std::string document = R"({"apiVersion": "apim/v1", "gateways": [
    {"name": "edge", "tier": "standard",
     "shared_state": {"redis_address": "redis.internal:6380", "database": 3}}]})";
  EXPECT_THAT(Ok({"import", "-"}, document).out, HasSubstr("update gateway edge (shared_state)\n"));
  v1::Gateway gateway = Get("edge");
  EXPECT_EQ(gateway.shared_state().database(), 3u);
  EXPECT_FALSE(gateway.shared_state().tls()) << "the document's setting replaces the stored one";
  EXPECT_TRUE(gateway.shared_state().has_password());
  EXPECT_EQ(Ok({"import", "-"}, document).out, "0 created, 0 updated, 0 deleted, 1 unchanged\n");

  // One that carries a password sets it.
  const std::string with_password = R"({"apiVersion": "apim/v1", "gateways": [
    {"name": "edge", "tier": "standard",
     "shared_state": {"redis_address": "redis.internal:6380", "password": "from a file"}}]})";
  Ok({"import", "-"}, with_password);
  std::unique_ptr<FakeWorker> worker = JoinEdge();
  EXPECT_EQ(worker->Next().shared_state().password(), "from a file");
}

TEST_F(SharedStateSettingsTest, RefusesSettingsThatCannotWorkNamingTheFieldAndChangingNothing) {
  const std::string ca = ReadFile(ca_.cert());
  struct Case {
    std::function<void(v1::SharedState&)> set;
    std::string message;
  };
  auto address = [](std::string value) {
    return [value](v1::SharedState& s) { s.set_redis_address(value); };
  };
  const std::vector<Case> cases = {
      {[](v1::SharedState& s) { s.set_tls(true); },
       "gateway.shared_state.redis_address: is required"},
      {address("redis.internal"),
       "gateway.shared_state.redis_address: \"redis.internal\" has no "
       "port"},
      {address("redis://redis.internal:6379"), "gateway.shared_state.redis_address"},
      {address("redis.internal:0"), "gateway.shared_state.redis_address"},
      {address("redis.internal:65536"), "gateway.shared_state.redis_address"},
      {address("::1:6379"), "gateway.shared_state.redis_address"},
      {address("[::1:6379"), "gateway.shared_state.redis_address"},
      {address("redis internal:6379"), "gateway.shared_state.redis_address"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_tls(true);
         s.set_ca_certificate("hello");
       },
       "gateway.shared_state.ca_certificate: holds no PEM certificate"},
      {[ca](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_ca_certificate(ca);
       },
       "gateway.shared_state.ca_certificate: applies only with TLS"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_username("a b");
         s.set_password("p");
       },
       "gateway.shared_state.username"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_username("apim");
       },
       "gateway.shared_state.password: is required with gateway.shared_state.username"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_password("two\nlines");
       },
       "gateway.shared_state.password: must not contain line breaks"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_password(std::string(4097, 'x'));
       },
       "gateway.shared_state.password: must be at most 4096"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_database(65536);
       },
       "gateway.shared_state.database: must be between 0 and 65535"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_key_prefix("a b");
       },
       "gateway.shared_state.key_prefix: must be printable ASCII without spaces"},
      {[](v1::SharedState& s) {
         s.set_redis_address("r:1");
         s.set_key_prefix(std::string(129, 'k'));
       },
       "gateway.shared_state.key_prefix: must be at most 128"},
  };
  // Without a stored password, which an update of the whole setting would keep.
  Ok({"gateway", "create", "plain", "--tier", "standard"});
  const v1::Gateway before = Get("plain");
  for (const Case& refused : cases) {
    v1::CreateGatewayRequest create;
    create.mutable_gateway()->set_name("bad");
    create.mutable_gateway()->set_tier("standard");
    refused.set(*create.mutable_gateway()->mutable_shared_state());
    v1::Gateway ignored;
    grpc::Status status = stub_->CreateGateway(AuthorizedContext().get(), create, &ignored);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.message;
    EXPECT_THAT(status.error_message(), HasSubstr(refused.message));

    v1::Gateway update;
    update.set_name("plain");
    refused.set(*update.mutable_shared_state());
    status = Update(update, {"shared_state"});
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.message;
    EXPECT_THAT(status.error_message(), HasSubstr(refused.message));
  }
  v1::Gateway unknown;
  EXPECT_EQ(GetGateway("bad", unknown).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get("plain").etag(), before.etag()) << "nothing was written";
  grpc::Status output_only = Update(before, {"shared_state.has_password"});
  EXPECT_EQ(output_only.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(output_only.error_message(),
              HasSubstr("update_mask: gateway.shared_state.has_password cannot be changed"));
}

TEST_F(SharedStateSettingsTest, ApimctlSaysWhatIsWrongWithItsExitCode) {
  const std::string empty_file = (dir_.path() / "empty.password").string();
  std::ofstream(empty_file) << "\n";
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  for (const Case& refused : std::vector<Case>{
           {{"gateway", "create", "bad", "--tier", "standard", "--redis-address", "nope"},
            3,
            "INVALID_ARGUMENT: gateway.shared_state.redis_address: \"nope\" has no port"},
           {{"gateway", "create", "bad", "--tier", "standard", "--redis-address", "r:1",
             "--redis-password-file", "/nonexistent/redis.password"},
            66,
            "--redis-password-file: cannot read /nonexistent/redis.password"},
           {{"gateway", "create", "bad", "--tier", "standard", "--redis-address", "r:1",
             "--redis-password-file", empty_file},
            66,
            "is empty"},
           {{"gateway", "create", "bad", "--tier", "standard", "--redis-address", "r:1",
             "--redis-tls", "--redis-ca-file", "/nonexistent/ca.crt"},
            66,
            "--redis-ca-file /nonexistent/ca.crt"},
           {{"gateway", "create", "bad", "--tier", "standard", "--redis-password", "secret"},
            64,
            "--redis-password"},
           {{"gateway", "create", "bad", "--tier", "standard", "--no-shared-state"},
            64,
            "--no-shared-state"},
           {{"gateway", "create", "bad", "--tier", "standard", "--redis-database", "-1"},
            64,
            "apimctl: "},
           {{"gateway", "update", "bad", "--no-shared-state", "--redis-address", "r:1"},
            64,
            "excludes"},
           {{"gateway", "update", "bad", "--no-redis-password", "--redis-password-file",
             password_file_},
            64,
            "excludes"},
       }) {
    CommandResult result = Apimctl(refused.args);
    EXPECT_EQ(result.exit_code, refused.exit_code) << result.err;
    EXPECT_THAT(result.err, HasSubstr(refused.message)) << ::testing::PrintToString(refused.args);
  }
  EXPECT_EQ(Apimctl({"gateway", "get", "bad"}).exit_code, 5) << "nothing was created";
}

TEST_F(SharedStateSettingsTest, AnUpdateWithAStaleEtagIsAbortedAndChangesNothing) {
  CreateEdge();
  const std::string etag = Get("edge").etag();

  Ok({"gateway", "update", "edge", "--redis-database", "5", "--etag", etag});
  CommandResult stale =
      Apimctl({"gateway", "update", "edge", "--redis-database", "6", "--etag", etag});

  EXPECT_EQ(stale.exit_code, 10) << stale.err;
  EXPECT_THAT(stale.err, HasSubstr("ABORTED"));
  EXPECT_EQ(Get("edge").shared_state().database(), 5u);
}

}  // namespace
}  // namespace apim::testing

// apimctl against the real control plane binary: what a user types, what they see, and the exit
// codes scripts rely on.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/support/control_plane.h"

namespace apim {
namespace {

using apim::testing::CommandResult;
using apim::testing::ControlPlane;
using apim::testing::RunCommand;
using apim::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ApimctlTest : public ::testing::Test {
 protected:
  void SetUp() override { control_plane_.Start(); }

  CommandResult Apimctl(std::vector<std::string> args, const std::string& stdin_text = "") {
    return RunCommand(
        APIMCTL_BIN, args,
        {{"APIM_SERVER", control_plane_.address()}, {"APIM_TOKEN", apim::testing::kTestAdminToken}},
        std::chrono::seconds(30), stdin_text);
  }

  TempDir dir_;
  ControlPlane control_plane_{dir_.path()};
};

TEST_F(ApimctlTest, ManagesAnApiFromCreateToDelete) {
  CommandResult gateway = Apimctl({"gateway", "create", "edge", "--tier", "standard"});
  ASSERT_EQ(gateway.exit_code, 0) << gateway.err;
  EXPECT_THAT(gateway.out, HasSubstr("edge"));

  CommandResult created =
      Apimctl({"api", "create", "feed", "--path-prefix", "/feed", "--backend-url",
               "http://127.0.0.1:9000", "--sse", "--gateways", "edge"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, StartsWith("NAME"));

  CommandResult listed = Apimctl({"api", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("feed"));
  EXPECT_THAT(listed.out, HasSubstr("/feed"));

  CommandResult updated = Apimctl({"api", "update", "feed", "--timeout-seconds", "30"});
  ASSERT_EQ(updated.exit_code, 0) << updated.err;

  CommandResult json = Apimctl({"api", "get", "feed", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"timeout_seconds\": 30"));
  EXPECT_THAT(json.out, HasSubstr("\"sse\": true"));
  EXPECT_THAT(json.out, HasSubstr("\"backend_url\": \"http://127.0.0.1:9000\""));

  CommandResult deleted = Apimctl({"api", "delete", "feed"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted api feed\n");
  EXPECT_EQ(Apimctl({"api", "get", "feed"}).exit_code, 5);
}

TEST_F(ApimctlTest, ServerRefusalsExitWithTheirStatusCodeAndPrintTheServersMessage) {
  CommandResult missing = Apimctl({"api", "get", "ghost"});
  EXPECT_EQ(missing.exit_code, 5);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(missing.err, HasSubstr("\"ghost\""));

  CommandResult invalid =
      Apimctl({"api", "create", "orders", "--path-prefix", "orders", "--backend-url", "http://h"});
  EXPECT_EQ(invalid.exit_code, 3);
  EXPECT_THAT(invalid.err, HasSubstr("api.path_prefix"));

  ASSERT_EQ(Apimctl({"gateway", "create", "cheap", "--tier", "consumption"}).exit_code, 0);
  CommandResult precondition =
      Apimctl({"api", "create", "feed", "--path-prefix", "/feed", "--backend-url", "http://h",
               "--sse", "--gateways", "cheap"});
  EXPECT_EQ(precondition.exit_code, 9);
  EXPECT_THAT(precondition.err, HasSubstr("long-lived connections"));

  EXPECT_EQ(Apimctl({"gateway", "create", "cheap", "--tier", "basic"}).exit_code, 6);
  EXPECT_EQ(Apimctl({"gateway", "update", "cheap", "--tier", "basic", "--etag", "1"}).exit_code,
            10);
}

TEST_F(ApimctlTest, RefusesAWrongTokenAndAMissingServerWithDistinctCodes) {
  CommandResult wrong = RunCommand(
      APIMCTL_BIN, {"tier", "list", "--server", control_plane_.address(), "--token", "nope"});
  EXPECT_EQ(wrong.exit_code, 16);
  EXPECT_THAT(wrong.err, HasSubstr("UNAUTHENTICATED"));

  control_plane_.Stop(SIGTERM);
  CommandResult unreachable = Apimctl({"tier", "list", "--timeout", "2"});
  EXPECT_TRUE(unreachable.exit_code == 14 || unreachable.exit_code == 4)
      << unreachable.exit_code << " " << unreachable.err;
}

TEST_F(ApimctlTest, BadCommandLinesExitWithTheUsageCode) {
  EXPECT_EQ(Apimctl({"api", "frobnicate"}).exit_code, 64);
  EXPECT_EQ(Apimctl({"api", "create"}).exit_code, 64);
  EXPECT_EQ(Apimctl({"diagnostic", "create", "global", "--verbosity", "loud"}).exit_code, 64);
}

TEST_F(ApimctlTest, ListPrintsEveryPage) {
  CommandResult listed = Apimctl({"tier", "list", "--page-size", "3", "-o", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  for (const char* tier : {"basic", "basicv2", "consumption", "developer", "premium", "premiumv2",
                           "standard", "standardv2"}) {
    EXPECT_THAT(listed.out, HasSubstr(std::string("\"name\": \"") + tier + "\""));
  }
}

TEST_F(ApimctlTest, ReadsAPolicyDocumentFromStandardInput) {
  const std::string xml = "<policies>\n  <inbound><base/></inbound>\n</policies>\n";
  CommandResult created = Apimctl({"policy", "create", "global", "--file", "-"}, xml);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  CommandResult json = Apimctl({"policy", "get", "global", "-o", "json"});
  // JSON output escapes '<' and '>' as protobuf's JSON printer does.
  EXPECT_THAT(json.out, HasSubstr("\\u003cinbound\\u003e\\u003cbase/\\u003e"));

  CommandResult broken = Apimctl({"policy", "update", "global", "--file", "-"},
                                 "<policies>\n<inbound>\n</policies>\n");
  EXPECT_EQ(broken.exit_code, 3);
  EXPECT_THAT(broken.err, HasSubstr("policy.xml: line 3"));
}

TEST_F(ApimctlTest, PolicySetCreatesThenReplacesAndWarningsGoToStderr) {
  const std::string first =
      "<policies><inbound><cache-lookup/></inbound><outbound><cache-store duration=\"5\"/>"
      "</outbound></policies>";
  CommandResult created = Apimctl({"policy", "set", "--scope", "global", "--file", "-"}, first);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.err, HasSubstr("warning: not applied to SSE APIs"));
  CommandResult replaced = Apimctl({"policy", "set", "--scope", "global", "--file", "-"},
                                   "<policies><inbound><base/></inbound></policies>");
  ASSERT_EQ(replaced.exit_code, 0) << replaced.err;
  EXPECT_EQ(replaced.err, "");
  CommandResult got = Apimctl({"policy", "get", "--scope", "global", "-o", "json"});
  EXPECT_THAT(got.out, HasSubstr("\\u003cbase/\\u003e"));
  EXPECT_EQ(Apimctl({"policy", "get"}).exit_code, 64) << "a scope is required";
}

TEST_F(ApimctlTest, SubscriptionKeysAreShownOnCreateAndRegeneration) {
  ASSERT_EQ(Apimctl({"api", "create", "orders", "--path-prefix", "/orders", "--backend-url",
                     "http://127.0.0.1:9", "--subscription-required"})
                .exit_code,
            0);
  CommandResult created =
      Apimctl({"subscription", "create", "acme", "--scope", "api:orders", "-o", "json"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, ::testing::ContainsRegex("\"primary_key\": \"[0-9a-f]{64}\""));
  CommandResult listed = Apimctl({"subscription", "get", "acme", "-o", "json"});
  EXPECT_THAT(listed.out, ::testing::ContainsRegex("\"primary_key\": \"\""));
  CommandResult regenerated =
      Apimctl({"subscription", "regenerate-key", "acme", "--key", "secondary", "-o", "json"});
  ASSERT_EQ(regenerated.exit_code, 0) << regenerated.err;
  EXPECT_THAT(regenerated.out, ::testing::ContainsRegex("\"secondary_key\": \"[0-9a-f]{64}\""));
}

}  // namespace
}  // namespace apim

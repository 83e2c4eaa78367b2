// `apimctl export` and `apimctl import` against the real control plane binary: a document round
// trips between control planes, importing is idempotent, --dry-run writes nothing, --prune
// deletes what the document leaves out, and bad input or a refused change stops with its code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/control_plane.h"

namespace apim {
namespace {

using apim::testing::CommandResult;
using apim::testing::ControlPlane;
using apim::testing::RunCommand;
using apim::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A gateway serving an SSE API, with a diagnostic setting and a policy for the API.
constexpr char kBase[] = R"({
  "apiVersion": "apim/v1",
  "gateways": [{"name": "edge", "tier": "standard"}],
  "apis": [{"name": "orders", "path_prefix": "/orders", "backend_url": "http://127.0.0.1:9000",
            "sse": true, "gateways": ["edge"]}],
  "diagnostic_settings": [{"scope": "api:orders", "verbosity": "VERBOSITY_ERROR"}],
  "policies": [{"scope": "api:orders", "xml": "<policies><inbound><base/></inbound></policies>"}]
})";

// kBase with the gateway moved to another tier, one more API, and no settings or policies.
constexpr char kChanged[] = R"({
  "apiVersion": "apim/v1",
  "gateways": [{"name": "edge", "tier": "premium"}],
  "apis": [{"name": "orders", "path_prefix": "/orders", "backend_url": "http://127.0.0.1:9000",
            "sse": true, "gateways": ["edge"]},
           {"name": "billing", "path_prefix": "/billing", "backend_url": "http://127.0.0.1:9001",
            "gateways": ["edge"], "timeout_seconds": 30}]
})";

class ApimctlExportTest : public ::testing::Test {
 protected:
  void SetUp() override { control_plane_.Start(); }

  CommandResult Apimctl(const ControlPlane& control_plane, std::vector<std::string> args,
                        const std::string& stdin_text = "") {
    return RunCommand(
        APIMCTL_BIN, args,
        {{"APIM_SERVER", control_plane.address()}, {"APIM_TOKEN", apim::testing::kTestAdminToken}},
        std::chrono::seconds(30), stdin_text);
  }
  CommandResult Apimctl(std::vector<std::string> args, const std::string& stdin_text = "") {
    return Apimctl(control_plane_, std::move(args), stdin_text);
  }

  std::string Export(const ControlPlane& control_plane) {
    CommandResult exported = Apimctl(control_plane, {"export"});
    EXPECT_EQ(exported.exit_code, 0) << exported.err;
    return exported.out;
  }
  std::string Export() { return Export(control_plane_); }

  std::string WriteDocument(const std::string& name, const std::string& text) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // Imports `text` and expects success.
  CommandResult Import(const std::string& text, std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {"import", "-"};
    args.insert(args.end(), flags.begin(), flags.end());
    CommandResult imported = Apimctl(args, text);
    EXPECT_EQ(imported.exit_code, 0) << imported.err;
    return imported;
  }

  // One resource of every kind, a tier of our own and a built-in tier that was edited.
  void CreateOneOfEverything() {
    const std::vector<std::vector<std::string>> commands = {
        {"tier", "create", "streaming", "--long-lived-connections", "--idle-timeout-seconds", "60",
         "--description", "Our own tier"},
        {"tier", "update", "basic", "--idle-timeout-seconds", "77"},
        {"gateway", "create", "edge", "--tier", "streaming"},
        {"gateway", "create", "internal", "--tier", "basic", "--description", "Back office"},
        {"api", "create", "orders", "--path-prefix", "/orders", "--backend-url",
         "http://127.0.0.1:9000", "--sse", "--gateways", "edge,internal", "--timeout-seconds", "30",
         "--buffer-response=false"},
        {"api", "create", "billing", "--path-prefix", "/billing", "--host", "api.example.com",
         "--backend-url", "http://127.0.0.1:9001", "--gateways", "internal"},
        {"diagnostic", "create", "global", "--verbosity", "error", "--headers", "x-a,x-b",
         "--sampling-percentage", "0"},
        {"cache", "create", "api:billing", "--enabled", "--default-ttl-seconds", "5",
         "--max-entry-bytes", "4096"},
    };
    for (const std::vector<std::string>& command : commands) {
      CommandResult result = Apimctl(command);
      ASSERT_EQ(result.exit_code, 0) << ::testing::PrintToString(command) << ": " << result.err;
    }
    CommandResult policy =
        Apimctl({"policy", "create", "api:orders", "--file", "-"},
                "<policies>\n  <inbound><base/></inbound>\n  <outbound><base/></outbound>\n"
                "</policies>\n");
    ASSERT_EQ(policy.exit_code, 0) << policy.err;
  }

  TempDir dir_;
  TempDir control_plane_dir_;
  ControlPlane control_plane_{control_plane_dir_.path()};
};

TEST_F(ApimctlExportTest, ExportListsEveryKindWithoutOutputOnlyFields) {
  ASSERT_NO_FATAL_FAILURE(CreateOneOfEverything());

  const std::string document = Export();

  EXPECT_THAT(document, StartsWith("{\n \"apiVersion\": \"apim/v1\",\n \"tiers\": [\n"));
  for (const char* key : {"\"gateways\": [", "\"apis\": [", "\"diagnostic_settings\": [",
                          "\"cache_settings\": [", "\"policies\": ["}) {
    EXPECT_THAT(document, HasSubstr(key));
  }
  EXPECT_THAT(document, HasSubstr("\"name\": \"streaming\""));
  EXPECT_THAT(document, HasSubstr("\"idle_timeout_seconds\": 77"));
  EXPECT_THAT(document, HasSubstr("\"buffer_response\": false"));
  EXPECT_THAT(document, HasSubstr("\"max_entry_bytes\": \"4096\""));
  for (const char* output_only : {"etag", "create_time", "update_time", "built_in", "warnings"}) {
    EXPECT_THAT(document, Not(HasSubstr(std::string("\"") + output_only + "\""))) << output_only;
  }
}

TEST_F(ApimctlExportTest, DocumentRoundTripsThroughAFreshControlPlane) {
  ASSERT_NO_FATAL_FAILURE(CreateOneOfEverything());
  const std::string exported = Export();
  TempDir target_dir;
  ControlPlane target(target_dir.path());
  target.Start();

  CommandResult imported = Apimctl(target, {"import", WriteDocument("exported.json", exported)});

  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_THAT(imported.out, HasSubstr("update tier basic (idle_timeout_seconds: 240 -> 77)\n"));
  EXPECT_THAT(imported.out, HasSubstr("create tier streaming\n"));
  EXPECT_THAT(imported.out, HasSubstr("create api orders\n"));
  EXPECT_THAT(imported.out, HasSubstr("create policy api:orders\n"));
  // The other seven built-in tiers are already as exported.
  EXPECT_THAT(imported.out, HasSubstr("8 created, 1 updated, 0 deleted, 7 unchanged\n"));
  EXPECT_EQ(Export(target), exported);
}

TEST_F(ApimctlExportTest, ImportingTheSameDocumentTwiceChangesNothingTheSecondTime) {
  CommandResult first = Import(kBase);
  EXPECT_EQ(first.out,
            "create gateway edge\n"
            "create api orders\n"
            "create diagnostic api:orders\n"
            "create policy api:orders\n"
            "4 created, 0 updated, 0 deleted, 0 unchanged\n");
  const std::string after_first = Export();

  CommandResult second = Import(kBase);

  EXPECT_EQ(second.out, "0 created, 0 updated, 0 deleted, 4 unchanged\n");
  EXPECT_EQ(Export(), after_first);
  CommandResult verbose = Import(kBase, {"-v"});
  EXPECT_THAT(verbose.out, HasSubstr("unchanged gateway edge\nunchanged api orders\n"));
}

TEST_F(ApimctlExportTest, ExportedDocumentImportsIntoItsOwnControlPlaneWithoutChanges) {
  ASSERT_NO_FATAL_FAILURE(CreateOneOfEverything());

  CommandResult imported = Import(Export());

  EXPECT_THAT(imported.out, StartsWith("0 created, 0 updated, 0 deleted, "));
}

TEST_F(ApimctlExportTest, UpdateNamesTheChangedFieldsAndLeavesUnlistedResourcesAlone) {
  Import(kBase);

  CommandResult changed = Import(kChanged);

  EXPECT_EQ(changed.out,
            "update gateway edge (tier: standard -> premium)\n"
            "create api billing\n"
            "1 created, 1 updated, 0 deleted, 1 unchanged\n");
  EXPECT_EQ(Apimctl({"policy", "get", "api:orders"}).exit_code, 0);
  EXPECT_EQ(Apimctl({"diagnostic", "get", "api:orders"}).exit_code, 0);
}

TEST_F(ApimctlExportTest, DryRunPrintsWhatWouldChangeAndWritesNothing) {
  Import(kBase);
  const std::string before = Export();

  CommandResult dry_run = Import(kChanged, {"--dry-run", "--prune"});

  EXPECT_EQ(dry_run.out,
            "would update gateway edge (tier: standard -> premium)\n"
            "would create api billing\n"
            "would delete policy api:orders\n"
            "would delete diagnostic api:orders\n"
            "1 created, 1 updated, 2 deleted, 1 unchanged (dry run: nothing was written)\n");
  EXPECT_EQ(Export(), before);
}

TEST_F(ApimctlExportTest, PruneDeletesWhatTheDocumentLeavesOutButNotBuiltInTiers) {
  Import(kBase);
  ASSERT_EQ(Apimctl({"tier", "create", "spare", "--long-lived-connections",
                     "--idle-timeout-seconds", "60"})
                .exit_code,
            0);

  CommandResult pruned = Import(kChanged, {"--prune"});

  EXPECT_EQ(pruned.out,
            "update gateway edge (tier: standard -> premium)\n"
            "create api billing\n"
            "delete policy api:orders\n"
            "delete diagnostic api:orders\n"
            "delete tier spare\n"
            "1 created, 1 updated, 3 deleted, 1 unchanged\n");
  EXPECT_EQ(Apimctl({"policy", "get", "api:orders"}).exit_code, 5);
  EXPECT_EQ(Apimctl({"tier", "get", "spare"}).exit_code, 5);
  CommandResult tiers = Apimctl({"tier", "list"});
  for (const char* built_in : {"basic", "consumption", "developer", "premium", "standard"}) {
    EXPECT_THAT(tiers.out, HasSubstr(built_in));
  }
  // The document now describes the server completely.
  EXPECT_EQ(Import(kChanged, {"--prune"}).out, "0 created, 0 updated, 0 deleted, 3 unchanged\n");
}

TEST_F(ApimctlExportTest, MalformedDocumentExitsWithDataErrorAndChangesNothing) {
  const std::string before = Export();

  CommandResult truncated = Apimctl(
      {"import", WriteDocument("truncated.json", R"({"apiVersion": "apim/v1", "apis": [)")});
  CommandResult misspelt =
      Apimctl({"import", "-"}, R"({"apiVersion": "apim/v1", "gateways": [{"nmae": "edge"}]})");
  CommandResult unversioned = Apimctl({"import", "-"}, R"({"gateways": [{"name": "edge"}]})");

  EXPECT_EQ(truncated.exit_code, 65);
  EXPECT_THAT(truncated.err, HasSubstr("truncated.json: invalid document: "));
  EXPECT_EQ(misspelt.exit_code, 65);
  EXPECT_THAT(misspelt.err, HasSubstr("(gateways[0]) nmae"));
  EXPECT_EQ(unversioned.exit_code, 65);
  EXPECT_THAT(unversioned.err, HasSubstr("apiVersion"));
  EXPECT_EQ(truncated.out + misspelt.out + unversioned.out, "");
  EXPECT_EQ(Apimctl({"import", "/nonexistent/config.json"}).exit_code, 66);
  EXPECT_EQ(Export(), before);
}

TEST_F(ApimctlExportTest, MisshapenDocumentWithPruneIsRefusedAndDeletesNothing) {
  Import(kChanged);
  const std::string before = Export();

  // A list holding a list once read as "no APIs", so --prune deleted every API.
  CommandResult refused =
      Apimctl({"import", "-", "--prune"}, R"({"apiVersion": "apim/v1", "apis": [[]]})");

  EXPECT_EQ(refused.exit_code, 65);
  EXPECT_EQ(refused.err, "apimctl: standard input: apis[0]: expected an object, got an array\n");
  EXPECT_EQ(refused.out, "");
  EXPECT_EQ(Apimctl({"api", "get", "orders"}).exit_code, 0);
  EXPECT_EQ(Apimctl({"api", "get", "billing"}).exit_code, 0);
  EXPECT_EQ(Export(), before);
}

TEST_F(ApimctlExportTest, RefusedChangeStopsTheImportAfterPrintingWhatWasDone) {
  CommandResult refused = Apimctl({"import", "-"}, R"({
    "apiVersion": "apim/v1",
    "gateways": [{"name": "edge", "tier": "standard"}],
    "apis": [{"name": "orders", "path_prefix": "orders", "backend_url": "http://127.0.0.1:9000"}],
    "policies": [{"scope": "global", "xml": "<policies/>"}]
  })");

  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_EQ(refused.out, "create gateway edge\n");
  EXPECT_THAT(refused.err,
              StartsWith("apimctl: INVALID_ARGUMENT: create api orders: api.path_prefix"));
  EXPECT_EQ(Apimctl({"gateway", "get", "edge"}).exit_code, 0);
  EXPECT_EQ(Apimctl({"policy", "get", "global"}).exit_code, 5);
}

TEST_F(ApimctlExportTest, PruneRefusedByTheServerReportsTheDeleteThatFailed) {
  Import(kBase);

  // The document keeps the API on the gateway but leaves the gateway out.
  CommandResult refused = Apimctl({"import", "-", "--prune"}, R"({
    "apiVersion": "apim/v1",
    "apis": [{"name": "orders", "path_prefix": "/orders", "backend_url": "http://127.0.0.1:9000",
              "sse": true, "gateways": ["edge"]}]
  })");

  EXPECT_EQ(refused.exit_code, 9);
  EXPECT_THAT(refused.out, HasSubstr("delete policy api:orders\n"));
  EXPECT_THAT(refused.err, StartsWith("apimctl: FAILED_PRECONDITION: delete gateway edge: "));
}

}  // namespace
}  // namespace apim

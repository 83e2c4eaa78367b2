#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "apim/v1/management.grpc.pb.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/declarative.h"
#include "cli/output.h"
#include "cli/resource_kinds.h"

namespace apim::cli {
namespace {

using ::testing::HasSubstr;

ParsedCommandLine Parse(std::vector<std::string> args) {
  args.insert(args.begin(), {"--token", "secret"});
  return ParseCommandLine(args);
}

// Parses a command line that must be valid.
Command ParseValid(std::vector<std::string> args) {
  ParsedCommandLine parsed = Parse(std::move(args));
  EXPECT_TRUE(parsed.command.has_value()) << parsed.err;
  if (!parsed.command) return {};
  return std::move(*parsed.command);
}

template <typename Resource>
const Resource& ResourceOf(const Command& command) {
  return dynamic_cast<const Resource&>(*command.resource);
}

std::vector<std::string> MaskPaths(const Command& command) {
  return {command.update_mask.paths().begin(), command.update_mask.paths().end()};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(CommandLine, ApiCreateFlagsBuildTheApiMessage) {
  Command command =
      ParseValid({"api", "create", "orders", "--path-prefix", "/orders", "--backend-url",
                  "http://127.0.0.1:9000", "--sse", "--gateways", "a,b"});

  v1::Api expected;
  expected.set_name("orders");
  expected.set_path_prefix("/orders");
  expected.set_backend_url("http://127.0.0.1:9000");
  expected.set_sse(true);
  expected.add_gateways("a");
  expected.add_gateways("b");
  EXPECT_EQ(command.verb, Verb::kCreate);
  EXPECT_EQ(command.kind->command, "api");
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(ResourceOf<v1::Api>(command), expected))
      << command.resource->DebugString();
  EXPECT_EQ(command.connection.token, "secret");
  EXPECT_EQ(command.connection.server, "127.0.0.1:50051");
  EXPECT_EQ(command.connection.timeout, std::chrono::seconds(10));
  EXPECT_EQ(command.output, OutputFormat::kTable);
}

TEST(CommandLine, UpdateMaskNamesExactlyTheFieldsGiven) {
  Command command = ParseValid({"api", "update", "orders", "--backend-url", "X"});

  EXPECT_EQ(MaskPaths(command), std::vector<std::string>{"backend_url"});
  EXPECT_EQ(ResourceOf<v1::Api>(command).name(), "orders");
  EXPECT_EQ(ResourceOf<v1::Api>(command).backend_url(), "X");
}

TEST(CommandLine, UpdateCarriesTheEtagInTheResourceButNotInTheMask) {
  Command command = ParseValid({"tier", "update", "basic", "--idle-timeout-seconds", "30", "--etag",
                                "e1", "--long-lived-connections=false"});

  EXPECT_EQ(MaskPaths(command),
            (std::vector<std::string>{"long_lived_connections", "idle_timeout_seconds"}));
  EXPECT_EQ(ResourceOf<v1::Tier>(command).etag(), "e1");
  EXPECT_EQ(ResourceOf<v1::Tier>(command).idle_timeout_seconds(), 30u);
}

TEST(CommandLine, UpdateWithoutAnyFieldIsAUsageError) {
  ParsedCommandLine parsed = Parse({"api", "update", "orders", "--etag", "e1"});

  EXPECT_FALSE(parsed.command.has_value());
  EXPECT_EQ(parsed.exit_code, kExitUsage);
  EXPECT_THAT(parsed.err, HasSubstr("at least one field"));
}

TEST(CommandLine, EmptyListValueClearsTheListOnUpdate) {
  Command command = ParseValid({"api", "update", "orders", "--gateways", ""});

  EXPECT_EQ(MaskPaths(command), std::vector<std::string>{"gateways"});
  EXPECT_EQ(ResourceOf<v1::Api>(command).gateways_size(), 0);
}

TEST(CommandLine, HostnameFlagsReplaceTheGatewaysBindingsAndMarkTheDefault) {
  Command command =
      ParseValid({"gateway", "update", "edge", "--hostname", "a.example.com=web", "--hostname",
                  "b.example.com=web,*.example.org=org", "--default-hostname", "b.example.com"});

  EXPECT_EQ(MaskPaths(command), std::vector<std::string>{"hostnames"});
  const auto& hostnames = ResourceOf<v1::Gateway>(command).hostnames();
  ASSERT_EQ(hostnames.size(), 3);
  EXPECT_EQ(hostnames[1].hostname(), "b.example.com");
  EXPECT_EQ(hostnames[2].certificate(), "org");
  EXPECT_TRUE(hostnames[1].is_default());
  EXPECT_FALSE(hostnames[0].is_default());
}

TEST(CommandLine, CertificateFilesAreReadAndNamedInTheMask) {
  const std::string path = ::testing::TempDir() + "/chain.pem";
  std::ofstream(path) << "PEM";
  Command command = ParseValid({"certificate", "update", "web", "--cert-file", path});

  EXPECT_EQ(MaskPaths(command), std::vector<std::string>{"certificate_chain"});
  EXPECT_EQ(ResourceOf<v1::Certificate>(command).certificate_chain(), "PEM");
  EXPECT_EQ(Parse({"certificate", "create", "web", "--cert-file", path}).exit_code, kExitUsage)
      << "create needs the key too";
  std::remove(path.c_str());
}

TEST(CommandLine, SharedStateFlagsBuildTheSettingAndReadThePasswordsFirstLine) {
  const std::string password = ::testing::TempDir() + "/redis.password";
  std::ofstream(password) << "s3cret pass\r\n";
  const std::string ca = ::testing::TempDir() + "/redis-ca.pem";
  std::ofstream(ca) << "CA PEM";
  Command command = ParseValid(
      {"gateway", "create", "edge", "--tier", "standard", "--redis-address", "redis.internal:6380",
       "--redis-tls", "--redis-ca-file", ca, "--redis-user", "apim", "--redis-password-file",
       password, "--redis-database", "2", "--redis-key-prefix", "edge:"});

  v1::SharedState expected;
  expected.set_redis_address("redis.internal:6380");
  expected.set_tls(true);
  expected.set_ca_certificate("CA PEM");
  expected.set_username("apim");
  expected.set_password("s3cret pass");
  expected.set_database(2);
  expected.set_key_prefix("edge:");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      ResourceOf<v1::Gateway>(command).shared_state(), expected))
      << command.resource->DebugString();
  EXPECT_FALSE(ResourceOf<v1::Gateway>(ParseValid({"gateway", "create", "edge", "--tier", "basic"}))
                   .has_shared_state());
  std::remove(password.c_str());
  std::remove(ca.c_str());
}

TEST(CommandLine, SharedStateUpdatesNameEachFlagGivenInTheMask) {
  EXPECT_EQ(MaskPaths(ParseValid({"gateway", "update", "edge", "--redis-address", "r:1",
                                  "--redis-tls=false", "--redis-database", "3"})),
            (std::vector<std::string>{"shared_state.redis_address", "shared_state.tls",
                                      "shared_state.database"}));
  Command no_password = ParseValid({"gateway", "update", "edge", "--no-redis-password"});
  EXPECT_EQ(MaskPaths(no_password), std::vector<std::string>{"shared_state.password"});
  EXPECT_EQ(ResourceOf<v1::Gateway>(no_password).shared_state().password(), "");
  EXPECT_EQ(MaskPaths(ParseValid({"gateway", "update", "edge", "--no-redis-ca"})),
            std::vector<std::string>{"shared_state.ca_certificate"});
  Command none = ParseValid({"gateway", "update", "edge", "--no-shared-state"});
  EXPECT_EQ(MaskPaths(none), std::vector<std::string>{"shared_state"});
  EXPECT_FALSE(ResourceOf<v1::Gateway>(none).has_shared_state());
}

TEST(CommandLine, SharedStateFlagsThatCannotGoTogetherOrCannotBeReadAreRefused) {
  EXPECT_EQ(Parse({"gateway", "update", "edge", "--no-shared-state", "--redis-tls"}).exit_code,
            kExitUsage);
  EXPECT_EQ(
      Parse({"gateway", "update", "edge", "--no-redis-ca", "--redis-ca-file", "ca.pem"}).exit_code,
      kExitUsage);
  EXPECT_EQ(Parse({"gateway", "create", "edge", "--tier", "basic", "--no-shared-state"}).exit_code,
            kExitUsage)
      << "there is nothing to clear on create";
  EXPECT_EQ(Parse({"gateway", "create", "edge", "--redis-password", "secret"}).exit_code,
            kExitUsage)
      << "a password is never a flag's value";
  ParsedCommandLine missing =
      Parse({"gateway", "update", "edge", "--redis-password-file", "/nonexistent/redis.password"});
  EXPECT_EQ(missing.exit_code, kExitNoInput);
  EXPECT_THAT(missing.err, HasSubstr("--redis-password-file: cannot read /nonexistent/"));
  const std::string empty = ::testing::TempDir() + "/empty.password";
  std::ofstream(empty) << "  \n";
  ParsedCommandLine blank = Parse({"gateway", "update", "edge", "--redis-password-file", empty});
  EXPECT_EQ(blank.exit_code, kExitNoInput);
  EXPECT_THAT(blank.err, HasSubstr("is empty"));
  std::remove(empty.c_str());
}

TEST(CommandLine, RepeatedListFlagsAccumulateAndSplitOnCommas) {
  Command command = ParseValid({"api", "create", "orders", "--gateways", "a,b", "--gateways", "c"});

  const auto& gateways = ResourceOf<v1::Api>(command).gateways();
  EXPECT_EQ(std::vector<std::string>(gateways.begin(), gateways.end()),
            (std::vector<std::string>{"a", "b", "c"}));
}

TEST(CommandLine, BoolFlagTakesAnOptionalValue) {
  EXPECT_TRUE(ResourceOf<v1::Api>(ParseValid({"api", "create", "o", "--sse"})).sse());
  EXPECT_FALSE(ResourceOf<v1::Api>(ParseValid({"api", "create", "o", "--sse=false"})).sse());
  EXPECT_FALSE(ResourceOf<v1::Api>(ParseValid({"api", "create", "o", "--sse", "false"})).sse());
  EXPECT_TRUE(ResourceOf<v1::Api>(ParseValid({"api", "create", "--sse", "o"})).sse());
}

TEST(CommandLine, OptionalFieldsAreSetOnlyWhenGiven) {
  const Command parsed = ParseValid({"api", "create", "o"});
  const v1::Api& unset = ResourceOf<v1::Api>(parsed);
  EXPECT_FALSE(unset.has_timeout_seconds());
  EXPECT_FALSE(unset.has_buffer_response());

  Command command =
      ParseValid({"api", "create", "o", "--buffer-response=false", "--timeout-seconds", "0"});
  EXPECT_TRUE(ResourceOf<v1::Api>(command).has_buffer_response());
  EXPECT_TRUE(ResourceOf<v1::Api>(command).has_timeout_seconds());
}

TEST(CommandLine, EnumValuesAreAcceptedInAnyCaseWithOrWithoutPrefix) {
  for (const char* text : {"error", "ERROR", "verbosity_error", "VERBOSITY_ERROR"}) {
    Command command = ParseValid({"diagnostic", "create", "global", "--verbosity", text});
    EXPECT_EQ(ResourceOf<v1::DiagnosticSetting>(command).verbosity(), v1::VERBOSITY_ERROR) << text;
  }
}

TEST(CommandLine, BadEnumValueIsAUsageErrorListingTheValidOnes) {
  ParsedCommandLine parsed = Parse({"diagnostic", "create", "global", "--verbosity", "loud"});

  EXPECT_FALSE(parsed.command.has_value());
  EXPECT_EQ(parsed.exit_code, kExitUsage);
  EXPECT_THAT(parsed.err, HasSubstr("--verbosity"));
  EXPECT_THAT(parsed.err, HasSubstr("verbose, information, error"));
}

TEST(CommandLine, NegativeOrNonNumericIntegerIsAUsageError) {
  EXPECT_EQ(Parse({"tier", "create", "t", "--idle-timeout-seconds", "ten"}).exit_code, kExitUsage);
  EXPECT_EQ(Parse({"tier", "create", "t", "--idle-timeout-seconds", "-1"}).exit_code, kExitUsage);
  EXPECT_EQ(Parse({"tier", "create", "t", "--idle-timeout-seconds", "4294967296"}).exit_code,
            kExitUsage);
}

TEST(CommandLine, MissingNameIsAUsageError) {
  ParsedCommandLine parsed = Parse({"api", "get"});

  EXPECT_EQ(parsed.exit_code, kExitUsage);
  EXPECT_THAT(parsed.err, HasSubstr("NAME"));
}

TEST(CommandLine, ServerOwnedFieldsHaveNoFlag) {
  EXPECT_EQ(Parse({"tier", "create", "t", "--built-in"}).exit_code, kExitUsage);
  EXPECT_EQ(Parse({"api", "create", "o", "--etag", "e"}).exit_code, kExitUsage);
  EXPECT_EQ(Parse({"api", "create", "o", "--name", "p"}).exit_code, kExitUsage);
}

TEST(CommandLine, ScopedResourcesTakeTheScopeAsTheirKey) {
  Command command = ParseValid({"cache", "update", "api:orders", "--default-ttl-seconds", "5"});

  EXPECT_EQ(command.key, "api:orders");
  EXPECT_EQ(ResourceOf<v1::CacheSetting>(command).scope(), "api:orders");
  EXPECT_EQ(MaskPaths(command), std::vector<std::string>{"default_ttl_seconds"});
}

TEST(CommandLine, PolicyFileFillsTheXmlField) {
  const std::string path = ::testing::TempDir() + "/cli_test_policy.xml";
  std::ofstream(path) << "<policies/>";

  Command command = ParseValid({"policy", "update", "global", "--file", path});

  EXPECT_EQ(ResourceOf<v1::Policy>(command).xml(), "<policies/>");
  EXPECT_EQ(MaskPaths(command), std::vector<std::string>{"xml"});
  std::remove(path.c_str());
}

TEST(CommandLine, UnreadablePolicyFileExitsWithNoInput) {
  ParsedCommandLine parsed = Parse({"policy", "create", "global", "--file", "/nonexistent/p.xml"});

  EXPECT_EQ(parsed.exit_code, kExitNoInput);
  EXPECT_THAT(parsed.err, HasSubstr("/nonexistent/p.xml"));
}

TEST(CommandLine, GlobalOptionsMayFollowTheVerb) {
  Command command = ParseValid(
      {"api", "get", "orders", "-o", "json", "--server", "h:1", "--timeout", "2.5", "--tls"});

  EXPECT_EQ(command.output, OutputFormat::kJson);
  EXPECT_EQ(command.connection.server, "h:1");
  EXPECT_EQ(command.connection.timeout, std::chrono::milliseconds(2500));
}

TEST(CommandLine, TokenFileSuppliesItsFirstLine) {
  const std::string path = ::testing::TempDir() + "/cli_test_token";
  std::ofstream(path) << "tok123\r\nsecond line\n";

  ParsedCommandLine parsed = ParseCommandLine({"--token-file", path, "tier", "list"});

  ASSERT_TRUE(parsed.command.has_value()) << parsed.err;
  EXPECT_EQ(parsed.command->connection.token, "tok123");
  std::remove(path.c_str());
}

TEST(CommandLine, MissingTokenIsAUsageError) {
  unsetenv("APIM_TOKEN");
  ParsedCommandLine parsed = ParseCommandLine({"tier", "list"});

  EXPECT_EQ(parsed.exit_code, kExitUsage);
  EXPECT_THAT(parsed.err, HasSubstr("APIM_TOKEN"));
}

TEST(CommandLine, TokenComesFromTheEnvironmentWhenNotGiven) {
  setenv("APIM_TOKEN", "from-env", 1);
  ParsedCommandLine parsed = ParseCommandLine({"tier", "list"});
  unsetenv("APIM_TOKEN");

  ASSERT_TRUE(parsed.command.has_value()) << parsed.err;
  EXPECT_EQ(parsed.command->connection.token, "from-env");
}

TEST(CommandLine, HelpExitsZeroAndDocumentsExitCodes) {
  ParsedCommandLine parsed = ParseCommandLine({"--help"});

  EXPECT_FALSE(parsed.command.has_value());
  EXPECT_EQ(parsed.exit_code, 0);
  EXPECT_THAT(parsed.out, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(parsed.out, HasSubstr("64"));
}

TEST(CommandLine, VerbHelpListsFlagsDerivedFromTheMessage) {
  ParsedCommandLine parsed = ParseCommandLine({"api", "create", "--help"});

  EXPECT_EQ(parsed.exit_code, 0);
  for (const char* flag : {"--display-name", "--path-prefix", "--backend-url", "--sse",
                           "--gateways", "--timeout-seconds", "--heartbeat-interval-seconds"}) {
    EXPECT_THAT(parsed.out, HasSubstr(flag));
  }
  EXPECT_THAT(parsed.out, ::testing::Not(HasSubstr("--create-time")));
}

TEST(CommandLine, GatewayTokenTakesTheGatewayName) {
  Command command = ParseValid({"gateway", "token", "edge"});

  EXPECT_EQ(command.kind->command, "gateway");
  EXPECT_EQ(command.verb, Verb::kToken);
  EXPECT_EQ(command.key, "edge");
  EXPECT_EQ(command.token_out, "");
  EXPECT_EQ(command.resource, nullptr);
}

TEST(CommandLine, TokenOutIsNotTheAdminToken) {
  ParsedCommandLine parsed = ParseCommandLine(
      {"gateway", "token", "edge", "--token-out", "/tmp/edge.token", "--token", "admin"});

  ASSERT_TRUE(parsed.command.has_value()) << parsed.err;
  EXPECT_EQ(parsed.command->token_out, "/tmp/edge.token");
  EXPECT_EQ(parsed.command->connection.token, "admin");
  EXPECT_EQ(ParseValid({"gateway", "token", "edge", "--token-out=f"}).token_out, "f");
}

TEST(CommandLine, GatewayWorkersTakesTheGatewayNameAndTheOutputFormat) {
  Command command = ParseValid({"gateway", "workers", "edge", "-o", "json"});

  EXPECT_EQ(command.kind->command, "gateway");
  EXPECT_EQ(command.verb, Verb::kWorkers);
  EXPECT_EQ(command.key, "edge");
  EXPECT_EQ(command.output, OutputFormat::kJson);
}

TEST(CommandLine, TokenAndWorkersNeedAGatewayName) {
  for (const char* verb : {"token", "workers"}) {
    ParsedCommandLine parsed = Parse({"gateway", verb});
    EXPECT_EQ(parsed.exit_code, kExitUsage) << verb;
    EXPECT_THAT(parsed.err, HasSubstr("NAME")) << verb;
  }
}

TEST(CommandLine, OnlyGatewaysHaveTokenAndWorkers) {
  for (const char* resource : {"tier", "api", "diagnostic", "cache", "policy"}) {
    EXPECT_EQ(Parse({resource, "token", "x"}).exit_code, kExitUsage) << resource;
    EXPECT_EQ(Parse({resource, "workers", "x"}).exit_code, kExitUsage) << resource;
  }
}

TEST(CommandLine, TokenOutBelongsToTheTokenVerbOnly) {
  EXPECT_EQ(Parse({"gateway", "workers", "edge", "--token-out", "f"}).exit_code, kExitUsage);
  EXPECT_EQ(Parse({"gateway", "get", "edge", "--token-out", "f"}).exit_code, kExitUsage);
}

TEST(CommandLine, HelpListsTheGatewayVerbs) {
  ParsedCommandLine parsed = ParseCommandLine({"gateway", "--help"});

  EXPECT_EQ(parsed.exit_code, 0);
  EXPECT_THAT(parsed.out, HasSubstr("token"));
  EXPECT_THAT(parsed.out, HasSubstr("workers"));
  EXPECT_THAT(ParseCommandLine({"gateway", "token", "--help"}).out, HasSubstr("--token-out"));
}

// One resource of every kind, with the output-only fields `get -o json` prints.
constexpr char kDocument[] = R"({
  "apiVersion": "apim/v1",
  "tiers": [{"name": "custom", "long_lived_connections": true, "idle_timeout_seconds": 60,
             "built_in": true, "etag": "7"}],
  "certificates": [{"name": "web", "certificate_chain": "PEM", "subject": "CN=web",
                    "private_key_set": true}],
  "gateways": [{"name": "edge", "tier": "custom", "create_time": "2026-01-02T03:04:05Z",
                "hostnames": [{"hostname": "api.example.com", "certificate": "web"}]}],
  "apis": [{"name": "orders", "path_prefix": "/orders", "backend_url": "http://b",
            "gateways": ["edge"], "timeout_seconds": 0}],
  "products": [{"name": "gold", "apis": ["orders"]}],
  "subscriptions": [{"name": "acme", "scope": "product:gold", "primary_key": "shown-once"}],
  "diagnostic_settings": [{"scope": "global", "verbosity": "VERBOSITY_ERROR"}],
  "cache_settings": [{"scope": "api:orders", "enabled": true, "warnings": ["w"]}],
  "policies": [{"scope": "global", "xml": "<policies/>"}]
})";

Configuration ParseValidConfiguration(std::string_view json) {
  absl::StatusOr<Configuration> configuration = ParseConfiguration(json);
  EXPECT_TRUE(configuration.ok()) << configuration.status();
  return configuration.ok() ? *std::move(configuration) : Configuration{};
}

template <typename Resource>
const Resource& Declared(const Configuration& configuration, size_t kind, size_t index = 0) {
  return dynamic_cast<const Resource&>(*configuration.resources.at(kind).at(index));
}

std::string ParseError(std::string_view json) {
  absl::StatusOr<Configuration> configuration = ParseConfiguration(json);
  EXPECT_FALSE(configuration.ok()) << json;
  return configuration.ok() ? "" : std::string(configuration.status().message());
}

TEST(Declarative, DocumentListsTheKindsInTheOrderTheyAreApplied) {
  std::vector<std::string> plurals;
  for (const ResourceKind& kind : ResourceKinds()) plurals.push_back(kind.plural);

  EXPECT_EQ(plurals, (std::vector<std::string>{"tiers", "certificates", "gateways", "apis",
                                               "products", "subscriptions", "diagnostic_settings",
                                               "cache_settings", "policies"}));
}

TEST(Declarative, ParsesOneListPerKindAndDropsOutputOnlyFields) {
  Configuration configuration = ParseValidConfiguration(kDocument);

  ASSERT_EQ(configuration.resources.size(), ResourceKinds().size());
  for (const auto& resources : configuration.resources) EXPECT_EQ(resources.size(), 1u);
  v1::Tier tier;
  tier.set_name("custom");
  tier.set_long_lived_connections(true);
  tier.set_idle_timeout_seconds(60);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      Declared<v1::Tier>(configuration, 0), tier))
      << configuration.resources[0][0]->DebugString();
  EXPECT_EQ(Declared<v1::Certificate>(configuration, 1).certificate_chain(), "PEM");
  EXPECT_EQ(Declared<v1::Certificate>(configuration, 1).subject(), "") << "read from the chain";
  EXPECT_FALSE(Declared<v1::Certificate>(configuration, 1).private_key_set());
  EXPECT_FALSE(Declared<v1::Gateway>(configuration, 2).has_create_time());
  EXPECT_EQ(Declared<v1::Gateway>(configuration, 2).hostnames(0).certificate(), "web");
  EXPECT_EQ(Declared<v1::Api>(configuration, 3).gateways(0), "edge");
  EXPECT_EQ(Declared<v1::Product>(configuration, 4).apis(0), "orders");
  EXPECT_EQ(Declared<v1::Subscription>(configuration, 5).primary_key(), "")
      << "keys are output only";
  EXPECT_EQ(Declared<v1::DiagnosticSetting>(configuration, 6).verbosity(), v1::VERBOSITY_ERROR);
  EXPECT_EQ(Declared<v1::CacheSetting>(configuration, 7).warnings_size(), 0);
  EXPECT_EQ(Declared<v1::Policy>(configuration, 8).xml(), "<policies/>");
}

TEST(Declarative, OptionalFieldSetToZeroStaysSetAndUnsetStaysUnset) {
  Configuration configuration = ParseValidConfiguration(kDocument);
  const v1::Api& api = Declared<v1::Api>(configuration, 3);

  EXPECT_TRUE(api.has_timeout_seconds());
  EXPECT_EQ(api.timeout_seconds(), 0u);
  EXPECT_FALSE(api.has_buffer_response());
}

TEST(Declarative, KindsMissingFromTheDocumentAreEmpty) {
  Configuration configuration =
      ParseValidConfiguration(R"({"apiVersion": "apim/v1", "gateways": [{"name": "edge"}]})");

  ASSERT_EQ(configuration.resources.size(), ResourceKinds().size());
  EXPECT_EQ(configuration.resources[0].size(), 0u);
  EXPECT_EQ(configuration.resources[2].size(), 1u);
}

TEST(Declarative, MalformedJsonIsRejectedWithTheLineAndColumn) {
  EXPECT_THAT(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": )"),
              HasSubstr("invalid document: parse error at line 1, column 45: "));
  EXPECT_THAT(ParseError("{\n  \"apiVersion\": \"apim/v1\",\n  apis: []\n}"),
              HasSubstr("line 3, column 3: "));
  EXPECT_THAT(ParseError("not json"), HasSubstr("invalid literal"));
}

TEST(Declarative, UnknownFieldOrBadValueIsRejectedWithItsPath) {
  EXPECT_THAT(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "backend": "x"}]})"),
              HasSubstr("(apis[0]) backend"));
  EXPECT_THAT(
      ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "timeout_seconds": -1}]})"),
      HasSubstr("apis[0].timeout_seconds"));
  EXPECT_THAT(ParseError(R"({"apiVersion": "apim/v1", "routes": []})"), HasSubstr("routes"));
}

TEST(Declarative, UnknownTopLevelKeyIsRejectedNotIgnored) {
  // A misspelt kind must not read as "no resources of that kind", which --prune would delete.
  EXPECT_THAT(ParseError(R"({"apiVersion": "apim/v1", "api": [{"name": "a"}]})"),
              HasSubstr("api: Cannot find field"));
  EXPECT_THAT(ParseError(R"({"apiVersion": "apim/v1", "apis": [], "api": []})"),
              HasSubstr("api: Cannot find field"));
}

TEST(Declarative, ListItemThatIsNotAnObjectIsRejectedWithItsPlace) {
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [[]]})"),
            "apis[0]: expected an object, got an array");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [[{"name": "a"}]]})"),
            "apis[0]: expected an object, got an array");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [1]})"),
            "apis[0]: expected an object, got a number");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": ["a"]})"),
            "apis[0]: expected an object, got a string");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [null]})"),
            "apis[0]: expected an object, got null");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "tiers": [{"name": "a"}, true]})"),
            "tiers[1]: expected an object, got a boolean");
}

TEST(Declarative, KindThatIsNotAListIsRejected) {
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": {}})"),
            "apis: expected an array, got an object");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": {"name": "a"}})"),
            "apis: expected an array, got an object");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": "x"})"),
            "apis: expected an array, got a string");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": null})"),
            "apis: expected an array, got null");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "policies": 0})"),
            "policies: expected an array, got a number");
  EXPECT_EQ(ParseError(R"({"apiVersion": ["apim/v1"]})"),
            "apiVersion: expected a string, got an array");
}

TEST(Declarative, FieldOfAResourceWithTheWrongShapeIsRejected) {
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "gateways": "x"}]})"),
            "apis[0].gateways: expected an array, got a string");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "gateways": [[]]}]})"),
            "apis[0].gateways[0]: expected a string, got an array");
  EXPECT_EQ(
      ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "gateways": ["e", null]}]})"),
      "apis[0].gateways[1]: expected a string, got null");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": {}}]})"),
            "apis[0].name: expected a string, got an object");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "sse": null}]})"),
            "apis[0].sse: expected a boolean, got null");
  EXPECT_EQ(
      ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "timeout_seconds": [1]}]})"),
      "apis[0].timeout_seconds: expected a number, got an array");
  // Proto3 JSON names are the same fields.
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "pathPrefix": []}]})"),
            "apis[0].pathPrefix: expected a string, got an array");
}

TEST(Declarative, KeyGivenTwiceInOneObjectIsRejected) {
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a"}], "apis": []})"),
            "apis: given twice");
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "apis": [{"name": "a", "name": "b"}]})"),
            "apis[0].name: given twice");
}

TEST(Declarative, DocumentThatIsNotAnObjectIsRejected) {
  for (const char* json : {"[]", "[{}]", "\"apim/v1\"", "1", "true", "null"}) {
    EXPECT_THAT(ParseError(json), ::testing::StartsWith("document: expected an object, got "))
        << json;
  }
  EXPECT_EQ(ParseError("[]"), "document: expected an object, got an array");
}

TEST(Declarative, EmptyOrTruncatedInputIsRejected) {
  for (const char* json : {"", "  \n", "{", R"({"apiVersion": "apim/v1", "apis": [)",
                           R"({"apiVersion": "apim/v1"} {})", R"({"apiVersion": "apim/v1",})"}) {
    EXPECT_THAT(ParseError(json), ::testing::StartsWith("invalid document: ")) << json;
  }
}

TEST(Declarative, EmptyListMeansNoResourcesOfThatKind) {
  Configuration configuration = ParseValidConfiguration(R"({"apiVersion": "apim/v1", "apis": []})");

  ASSERT_EQ(configuration.resources.size(), ResourceKinds().size());
  for (const auto& resources : configuration.resources) EXPECT_EQ(resources.size(), 0u);
}

TEST(Declarative, WrongOrMissingApiVersionIsRejected) {
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v2"})"),
            "apiVersion: expected \"apim/v1\", not \"apim/v2\"");
  EXPECT_THAT(ParseError(R"({"apis": []})"), HasSubstr("apiVersion"));
}

TEST(Declarative, ResourceWithoutItsKeyIsRejected) {
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "policies": [{"xml": "<policies/>"}]})"),
            "policies[0].scope: is required");
}

TEST(Declarative, ResourceListedTwiceIsRejected) {
  EXPECT_EQ(ParseError(R"({"apiVersion": "apim/v1", "gateways": [{"name": "a"}, {"name": "a"}]})"),
            "gateways[1]: gateway \"a\" is listed twice");
}

TEST(Declarative, ExportedDocumentShowsEveryFieldExceptTheOutputOnlyOnes) {
  Configuration configuration;
  configuration.resources.resize(ResourceKinds().size());
  auto tier = std::make_unique<v1::Tier>();
  tier->set_name("basic");
  tier->set_built_in(true);
  tier->set_etag("3");
  configuration.resources[0].push_back(std::move(tier));
  auto api = std::make_unique<v1::Api>();
  api->set_name("orders");
  api->add_gateways("edge");
  api->set_buffer_response(false);
  *api->mutable_update_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1);
  configuration.resources[3].push_back(std::move(api));

  EXPECT_EQ(ConfigurationJson(configuration),
            "{\n"
            " \"apiVersion\": \"apim/v1\",\n"
            " \"tiers\": [\n"
            "  {\n"
            "   \"name\": \"basic\",\n"
            "   \"description\": \"\",\n"
            "   \"long_lived_connections\": false,\n"
            "   \"max_response_duration_seconds\": 0,\n"
            "   \"idle_timeout_seconds\": 0,\n"
            "   \"heartbeat_interval_seconds\": 0,\n"
            "   \"max_concurrent_streams\": 0\n"
            "  }\n"
            " ],\n"
            " \"certificates\": [],\n"
            " \"gateways\": [],\n"
            " \"apis\": [\n"
            "  {\n"
            "   \"name\": \"orders\",\n"
            "   \"display_name\": \"\",\n"
            "   \"description\": \"\",\n"
            "   \"path_prefix\": \"\",\n"
            "   \"host\": \"\",\n"
            "   \"backend_url\": \"\",\n"
            "   \"sse\": false,\n"
            "   \"gateways\": [\n"
            "    \"edge\"\n"
            "   ],\n"
            "   \"subscription_required\": false,\n"
            "   \"buffer_response\": false\n"
            "  }\n"
            " ],\n"
            " \"products\": [],\n"
            " \"subscriptions\": [],\n"
            " \"diagnostic_settings\": [],\n"
            " \"cache_settings\": [],\n"
            " \"policies\": []\n"
            "}\n");
}

TEST(Declarative, ExportedDocumentParsesBackToTheSameResources) {
  Configuration configuration = ParseValidConfiguration(kDocument);
  const std::string json = ConfigurationJson(configuration);

  Configuration again = ParseValidConfiguration(json);

  ASSERT_EQ(again.resources.size(), configuration.resources.size());
  for (size_t kind = 0; kind < configuration.resources.size(); ++kind) {
    ASSERT_EQ(again.resources[kind].size(), configuration.resources[kind].size());
    for (size_t i = 0; i < configuration.resources[kind].size(); ++i) {
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
          *again.resources[kind][i], *configuration.resources[kind][i]))
          << again.resources[kind][i]->DebugString();
    }
  }
  EXPECT_EQ(ConfigurationJson(again), json);
}

TEST(Diff, ResourcesThatDifferOnlyInOutputOnlyFieldsAreEqual) {
  v1::Tier stored;
  stored.set_name("basic");
  stored.set_idle_timeout_seconds(240);
  stored.set_built_in(true);
  stored.set_etag("9");
  *stored.mutable_create_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(5);
  v1::Tier declared;
  declared.set_name("basic");
  declared.set_idle_timeout_seconds(240);

  EXPECT_TRUE(ChangedFields(stored, declared).empty());
}

TEST(Diff, AStoredPasswordIsNotAChangeButAPasswordInTheDocumentIs) {
  v1::Gateway stored;
  stored.set_name("edge");
  stored.mutable_shared_state()->set_redis_address("redis.internal:6379");
  stored.mutable_shared_state()->set_has_password(true);  // as Get returns it
  v1::Gateway declared;
  declared.set_name("edge");
  declared.mutable_shared_state()->set_redis_address("redis.internal:6379");

  EXPECT_TRUE(ChangedFields(stored, declared).empty());
  declared.mutable_shared_state()->set_password("from the document");
  EXPECT_EQ(DescribeChanges(ChangedFields(stored, declared)), "shared_state");
}

TEST(Diff, ChangedScalarsShowBothValues) {
  v1::Gateway stored;
  stored.set_name("edge");
  stored.set_tier("standard");
  v1::Gateway declared = stored;
  declared.set_tier("premium");

  std::vector<FieldChange> changes = ChangedFields(stored, declared);

  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].field, "tier");
  EXPECT_EQ(DescribeChanges(changes), "tier: standard -> premium");
}

TEST(Diff, ChangesAreListedInDeclarationOrderWithEnumsAndNumbersAsTyped) {
  v1::DiagnosticSetting stored;
  stored.set_scope("global");
  stored.set_sampling_percentage(100);
  stored.set_verbosity(v1::VERBOSITY_INFORMATION);
  v1::DiagnosticSetting declared = stored;
  declared.set_verbosity(v1::VERBOSITY_ERROR);
  declared.set_sampling_percentage(5);
  declared.set_log_client_ip(true);

  EXPECT_EQ(DescribeChanges(ChangedFields(stored, declared)),
            "sampling_percentage: 100 -> 5, verbosity: information -> error, "
            "log_client_ip: false -> true");
}

TEST(Diff, UnsetOptionalFieldDiffersFromZero) {
  v1::Api stored;
  stored.set_name("orders");
  v1::Api declared = stored;
  declared.set_timeout_seconds(0);

  EXPECT_EQ(DescribeChanges(ChangedFields(stored, declared)), "timeout_seconds: unset -> 0");
  EXPECT_EQ(DescribeChanges(ChangedFields(declared, stored)), "timeout_seconds: 0 -> unset");
}

TEST(Diff, EmptyTextAndTextWithSpacesAreQuoted) {
  v1::Tier stored;
  stored.set_name("custom");
  v1::Tier declared = stored;
  declared.set_description("Our \"own\" tier");

  EXPECT_EQ(DescribeChanges(ChangedFields(stored, declared)),
            "description: \"\" -> \"Our \\\"own\\\" tier\"");
}

TEST(Diff, ListsAndLongOrMultiLineTextAreNamedWithoutValues) {
  v1::Api stored;
  stored.set_name("orders");
  stored.add_gateways("a");
  stored.set_backend_url("http://b");
  v1::Api declared = stored;
  declared.add_gateways("b");
  declared.set_backend_url("http://a-very-long-host-name.example.com:8080/orders/v1");
  v1::Policy stored_policy;
  stored_policy.set_xml("<policies/>");
  v1::Policy declared_policy;
  declared_policy.set_xml("<policies>\n</policies>");

  EXPECT_EQ(DescribeChanges(ChangedFields(stored, declared)), "backend_url, gateways");
  EXPECT_EQ(DescribeChanges(ChangedFields(stored_policy, declared_policy)), "xml");
}

TEST(Diff, ReorderedListIsAChange) {
  v1::Api stored;
  stored.add_gateways("a");
  stored.add_gateways("b");
  v1::Api declared;
  declared.add_gateways("b");
  declared.add_gateways("a");

  EXPECT_EQ(DescribeChanges(ChangedFields(stored, declared)), "gateways");
}

std::string WriteTempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CommandLine, ImportParsesTheFileAndTakesItsFlags) {
  const std::string path = WriteTempFile("cli_test_import.json", kDocument);

  Command command = ParseValid({"import", path, "--dry-run", "--prune", "-v"});

  EXPECT_EQ(command.verb, Verb::kImport);
  EXPECT_EQ(command.kind, nullptr);
  EXPECT_TRUE(command.import_options.dry_run);
  EXPECT_TRUE(command.import_options.prune);
  EXPECT_TRUE(command.import_options.verbose);
  ASSERT_EQ(command.configuration.resources.size(), ResourceKinds().size());
  EXPECT_EQ(Declared<v1::Gateway>(command.configuration, 2).name(), "edge");
  std::remove(path.c_str());
}

TEST(CommandLine, ImportChangesByDefaultAndDeletesNothing) {
  const std::string path = WriteTempFile("cli_test_import_default.json", kDocument);

  Command command = ParseValid({"import", path});

  EXPECT_FALSE(command.import_options.dry_run);
  EXPECT_FALSE(command.import_options.prune);
  EXPECT_FALSE(command.import_options.verbose);
  std::remove(path.c_str());
}

TEST(CommandLine, ImportOfAMalformedFileExitsWithDataErrorNamingTheFile) {
  const std::string path = WriteTempFile("cli_test_bad.json", R"({"apiVersion": "apim/v1", )");

  ParsedCommandLine parsed = Parse({"import", path});

  EXPECT_FALSE(parsed.command.has_value());
  EXPECT_EQ(parsed.exit_code, kExitDataError);
  EXPECT_THAT(parsed.err, ::testing::StartsWith("apimctl: " + path + ": invalid document: "));
  std::remove(path.c_str());
}

TEST(CommandLine, ImportOfAMisshapenFileExitsWithDataErrorNamingThePlace) {
  const std::string path =
      WriteTempFile("cli_test_misshapen.json", R"({"apiVersion": "apim/v1", "apis": [[]]})");

  ParsedCommandLine parsed = Parse({"import", path, "--prune"});

  EXPECT_FALSE(parsed.command.has_value());
  EXPECT_EQ(parsed.exit_code, kExitDataError);
  EXPECT_EQ(parsed.err, "apimctl: " + path + ": apis[0]: expected an object, got an array\n");
  std::remove(path.c_str());
}

TEST(CommandLine, ImportOfAMissingFileExitsWithNoInput) {
  ParsedCommandLine parsed = Parse({"import", "/nonexistent/config.json"});

  EXPECT_EQ(parsed.exit_code, kExitNoInput);
  EXPECT_THAT(parsed.err, HasSubstr("/nonexistent/config.json"));
}

TEST(CommandLine, ImportNeedsAFile) {
  EXPECT_EQ(Parse({"import"}).exit_code, kExitUsage);
  EXPECT_EQ(Parse({"import", "-", "-o", "json"}).exit_code, kExitUsage);
}

TEST(CommandLine, ExportIsAlwaysJson) {
  EXPECT_EQ(ParseValid({"export"}).verb, Verb::kExport);
  EXPECT_EQ(ParseValid({"export"}).output, OutputFormat::kJson);
  EXPECT_EQ(ParseValid({"export", "-o", "json"}).output, OutputFormat::kJson);
  ParsedCommandLine table = Parse({"export", "-o", "table"});
  EXPECT_EQ(table.exit_code, kExitUsage);
  EXPECT_THAT(table.err, HasSubstr("JSON only"));
  EXPECT_EQ(Parse({"export", "extra"}).exit_code, kExitUsage);
}

TEST(CommandLine, HelpDocumentsExportAndImport) {
  ParsedCommandLine parsed = ParseCommandLine({"--help"});

  EXPECT_THAT(parsed.out, HasSubstr("export"));
  EXPECT_THAT(parsed.out, HasSubstr("import FILE"));
  EXPECT_THAT(parsed.out, HasSubstr("--prune"));
  EXPECT_THAT(parsed.out, HasSubstr("65"));
  ParsedCommandLine import_help = ParseCommandLine({"import", "--help"});
  EXPECT_EQ(import_help.exit_code, 0);
  EXPECT_THAT(import_help.out, HasSubstr("--dry-run"));
  EXPECT_THAT(import_help.out, HasSubstr("--verbose"));
}

TEST(CommandLine, OutputOnlyFieldsHaveNoFlag) {
  EXPECT_EQ(Parse({"cache", "create", "global", "--warnings", "w"}).exit_code, kExitUsage);
}

// No server listens on port 1 of loopback, so calls fail at once with UNAVAILABLE.
std::unique_ptr<v1::Management::Stub> StubWithoutServer() {
  return v1::Management::NewStub(
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
}

TEST(RunCommand, UnwritableTokenOutFailsBeforeTheTokenIsRotated) {
  Command command = ParseValid({"gateway", "token", "edge", "--token-out", "/nonexistent/t"});
  auto stub = StubWithoutServer();
  std::ostringstream out;
  std::ostringstream err;

  EXPECT_EQ(RunCommand(command, *stub, out, err), kExitCantCreate);
  EXPECT_THAT(err.str(), HasSubstr("/nonexistent/t"));
  EXPECT_THAT(err.str(), ::testing::Not(HasSubstr("UNAVAILABLE")));  // no call was made
  EXPECT_EQ(out.str(), "");
}

TEST(RunCommand, FailedTokenCallLeavesNoTokenFileBehind) {
  const std::string path = ::testing::TempDir() + "/cli_test_gateway.token";
  std::remove(path.c_str());
  Command command = ParseValid({"gateway", "token", "edge", "--token-out", path, "--timeout", "5"});
  auto stub = StubWithoutServer();
  std::ostringstream out;
  std::ostringstream err;

  EXPECT_EQ(RunCommand(command, *stub, out, err), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_THAT(err.str(), HasSubstr("apimctl: UNAVAILABLE"));
  EXPECT_NE(access(path.c_str(), F_OK), 0) << path << " was left behind";
}

TEST(RunCommand, ImportStopsAtTheFirstFailedCallAndNamesTheStep) {
  const std::string path = WriteTempFile("cli_test_unreachable.json", kDocument);
  Command command = ParseValid({"import", path, "--timeout", "5"});
  auto stub = StubWithoutServer();
  std::ostringstream out;
  std::ostringstream err;

  EXPECT_EQ(RunCommand(command, *stub, out, err), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_THAT(err.str(), ::testing::StartsWith("apimctl: UNAVAILABLE: get tier custom"));
  EXPECT_EQ(out.str(), "");  // no summary after a failure
  std::remove(path.c_str());
}

TEST(ResourceKinds, EveryKindNamesFieldsItsMessageHas) {
  for (const ResourceKind& kind : ResourceKinds()) {
    const google::protobuf::Descriptor& descriptor = *kind.prototype->GetDescriptor();
    EXPECT_NE(descriptor.FindFieldByName(kind.key_field), nullptr) << kind.command;
    EXPECT_NE(descriptor.FindFieldByName("etag"), nullptr) << kind.command;
    if (!kind.file_field.empty()) {
      EXPECT_NE(descriptor.FindFieldByName(kind.file_field), nullptr) << kind.command;
    }
    for (const Column& column : kind.columns) {
      EXPECT_NE(descriptor.FindFieldByName(column.field_path), nullptr)
          << kind.command << " " << column.header;
    }
  }
}

TEST(ResourceKinds, WorkerColumnsNameGatewayWorkerFields) {
  for (const Column& column : GatewayWorkerColumns()) {
    EXPECT_NE(v1::GatewayWorker::descriptor()->FindFieldByName(column.field_path), nullptr)
        << column.header;
  }
}

TEST(Output, WorkerTableShowsVersionsAndContactTimeToTheSecond) {
  v1::GatewayWorker acked;
  acked.set_worker_id("w1");
  acked.set_address("10.0.0.1:8080");
  acked.set_connected(true);
  acked.set_acked_version(42);
  *acked.mutable_last_contact() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      1767323045'123456789);  // 2026-01-02T03:04:05.123456789Z
  v1::GatewayWorker nacked;
  nacked.set_worker_id("w2");
  nacked.set_acked_version(41);
  nacked.set_nacked_version(42);
  nacked.set_last_nack_error("api orders: bad\nbackend");
  nacked.set_disconnect_reason("token rotated");
  std::ostringstream out;

  PrintTable(GatewayWorkerColumns(), {&acked, &nacked}, out);

  EXPECT_EQ(out.str(),
            "WORKER  ADDRESS        CONNECTED  ACKED  NACKED  LAST-ERROR                  "
            "LAST-CONTACT          DISCONNECTED-BECAUSE\n"
            "w1      10.0.0.1:8080  true       42     0       -                           "
            "2026-01-02T03:04:05Z  -\n"
            "w2      -              false      41     42      api orders: bad\\x0abackend  "
            "-                     token rotated\n");
}

TEST(Output, TableColumnsAreAligned) {
  v1::Api orders;
  orders.set_name("orders");
  orders.set_path_prefix("/orders");
  orders.set_backend_url("http://127.0.0.1:9000");
  orders.set_sse(true);
  orders.add_gateways("a");
  orders.add_gateways("b");
  v1::Api long_name;
  long_name.set_name("inventory-service");
  long_name.set_path_prefix("/inv");
  long_name.set_host("api.example.com");
  long_name.set_backend_url("http://b");
  std::vector<Column> columns = {{"NAME", "name"},
                                 {"PATH-PREFIX", "path_prefix"},
                                 {"HOST", "host"},
                                 {"SSE", "sse"},
                                 {"GATEWAYS", "gateways"}};
  std::ostringstream out;

  PrintTable(columns, {&orders, &long_name}, out);

  EXPECT_EQ(out.str(),
            "NAME               PATH-PREFIX  HOST             SSE    GATEWAYS\n"
            "orders             /orders      -                true   a,b\n"
            "inventory-service  /inv         api.example.com  false  -\n");
}

TEST(Output, TheGatewayTableListsTheSharedStateFieldsThatAreSetButNeverThePassword) {
  v1::Gateway plain;
  plain.set_name("plain");
  plain.set_tier("basic");
  v1::Gateway edge;
  edge.set_name("edge");
  edge.set_tier("standard");
  v1::SharedState& shared = *edge.mutable_shared_state();
  shared.set_redis_address("redis.internal:6380");
  shared.set_tls(true);
  shared.set_ca_certificate(std::string(100, 'c') + "\n");
  shared.set_database(2);
  shared.set_has_password(true);
  const ResourceKind& gateways = ResourceKinds()[2];
  ASSERT_EQ(gateways.command, "gateway");
  std::ostringstream out;

  PrintTable(gateways.columns, {&plain, &edge}, out);

  std::vector<std::string> lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("SHARED-STATE"));
  EXPECT_THAT(lines[1], HasSubstr("plain  basic     -          -  "));
  EXPECT_THAT(lines[2], HasSubstr("redis_address=redis.internal:6380 tls=true "
                                  "ca_certificate=(101 B) database=2 has_password=true"));
}

TEST(Output, UnsetOptionalFieldsShowADashAndEnumsShowTheirShortName) {
  v1::DiagnosticSetting unset;
  unset.set_scope("global");
  v1::DiagnosticSetting set;
  set.set_scope("api:orders");
  set.set_sampling_percentage(0);
  set.set_verbosity(v1::VERBOSITY_ERROR);
  std::vector<Column> columns = {
      {"SCOPE", "scope"}, {"SAMPLING", "sampling_percentage"}, {"VERBOSITY", "verbosity"}};
  std::ostringstream out;

  PrintTable(columns, {&unset, &set}, out);

  std::vector<std::string> lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "global      -         unspecified");
  EXPECT_EQ(lines[2], "api:orders  0         error");
}

// The server's messages may quote stored text: they reach the terminal escaped too.
TEST(Output, AFailedCallsMessageShowsControlCharactersAsEscapes) {
  std::ostringstream err;
  const int code = ReportFailedCall(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "api.display_name: \"\x1b[2Jx\" is bad"),
      err);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(err.str(), "apimctl: INVALID_ARGUMENT: api.display_name: \"\\x1b[2Jx\" is bad\n");
}

TEST(Output, ControlCharactersInCellsShowAsEscapesSoStoredTextCannotDriveTheTerminal) {
  v1::Api c0;
  c0.set_name("red\x1b[31m");
  c0.set_display_name("bell\x07");
  v1::Api c1;
  c1.set_name(
      "csi\xc2\x9b"
      "2J");
  // Other UTF-8, U+00A0 (0xC2 0xA0) among it, is text and stays.
  c1.set_display_name(
      "caf\xc3\xa9 no\xc2\xa0"
      "break\x7f\n");
  std::vector<Column> columns = {{"NAME", "name"}, {"DISPLAY-NAME", "display_name"}};
  std::ostringstream out;

  PrintTable(columns, {&c0, &c1}, out);

  EXPECT_EQ(out.str(),
            "NAME         DISPLAY-NAME\n"
            "red\\x1b[31m  bell\\x07\n"
            "csi\\u009b2J  caf\xc3\xa9 no\xc2\xa0"
            "break\\x7f\\x0a\n");
}

TEST(Output, JsonArrayHoldsEachResourceWithProtoFieldNamesAndEveryPrimitiveField) {
  v1::Gateway a;
  a.set_name("a");
  a.set_tier("basic");
  v1::Gateway b;
  b.set_name("b");
  std::ostringstream out;

  PrintJsonArray({&a, &b}, out);

  EXPECT_EQ(out.str(),
            "[\n"
            "  {\n"
            "   \"name\": \"a\",\n"
            "   \"description\": \"\",\n"
            "   \"tier\": \"basic\",\n"
            "   \"hostnames\": [],\n"
            "   \"etag\": \"\",\n"
            "   \"warnings\": []\n"
            "  },\n"
            "  {\n"
            "   \"name\": \"b\",\n"
            "   \"description\": \"\",\n"
            "   \"tier\": \"\",\n"
            "   \"hostnames\": [],\n"
            "   \"etag\": \"\",\n"
            "   \"warnings\": []\n"
            "  }\n"
            "]\n");
}

}  // namespace
}  // namespace apim::cli

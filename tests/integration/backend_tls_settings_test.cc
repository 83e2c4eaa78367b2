// An API's backend TLS settings on the control plane, driven with apimctl: PEM files checked when
// written, the client key (a secret) never returned by Get or List and left out of export, a
// write that leaves it out keeps it (import included), and refusals that name the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/control_plane.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"

namespace apim::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class BackendTlsSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override { control_plane_.Start(); }

  CommandResult Apimctl(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"--server", control_plane_.address()});
    return RunCommand(APIMCTL_BIN, args, {{"APIM_TOKEN", kTestAdminToken}},
                      std::chrono::seconds(30), stdin_text);
  }

  // The API as apimctl prints it in JSON.
  std::string Get(const std::string& name) {
    CommandResult got = Apimctl({"api", "get", name, "-o", "json"});
    EXPECT_EQ(got.exit_code, 0) << got.err;
    return got.out;
  }

  TempDir dir_;
  ControlPlane control_plane_{dir_.path()};
  TestCa ca_{dir_.path(), "settings"};
  CertificateFiles client_ = ca_.Issue("client");
};

TEST_F(BackendTlsSettingsTest, TheClientKeyIsStoredButNeverShownAndWritesWithoutItKeepIt) {
  CommandResult created = Apimctl({"api", "create", "llm", "--path-prefix", "/llm", "--backend-url",
                                   "https://llm.example", "--backend-ca-file", ca_.cert().string(),
                                   "--backend-client-cert-file", client_.cert.string(),
                                   "--backend-client-key-file", client_.key.string()});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string api = Get("llm");
  EXPECT_THAT(api, HasSubstr("\"client_key_set\": true"));
  EXPECT_THAT(api, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(api, Not(HasSubstr("warnings\": [\n  \"")));
  EXPECT_THAT(api, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(Apimctl({"api", "list", "-o", "json"}).out, Not(HasSubstr("PRIVATE KEY")));

  // Changing one field keeps the others, the key included.
  ASSERT_EQ(Apimctl({"api", "update", "llm", "--backend-server-name", "llm.internal"}).exit_code,
            0);
  api = Get("llm");
  EXPECT_THAT(api, HasSubstr("\"server_name\": \"llm.internal\""));
  EXPECT_THAT(api, HasSubstr("\"client_key_set\": true"));
  EXPECT_THAT(api, HasSubstr("\"ca_certificate\": \"-----BEGIN"));

  // Export leaves the key out; importing that document keeps the stored key.
  CommandResult exported = Apimctl({"export"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_THAT(exported.out, Not(HasSubstr("PRIVATE KEY")));
  CommandResult imported = Apimctl({"import", "-"}, exported.out);
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_THAT(Get("llm"), HasSubstr("\"client_key_set\": true"));
}

TEST_F(BackendTlsSettingsTest, RefusesSettingsThatCannotWorkNamingTheField) {
  TestCa other(dir_.path(), "other");
  CertificateFiles stranger = other.Issue("stranger");
  const std::string text = (dir_.path() / "not.pem").string();
  RunCommand("/bin/sh", {"-c", "echo hello > " + text});
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  for (const Case& refused : std::vector<Case>{
           {{"--backend-url", "http://plain.example", "--backend-server-name", "x.example"},
            "api.backend_tls: applies to https:// backend URLs only"},
           {{"--backend-url", "https://a.example", "--backend-ca-file", text},
            "api.backend_tls.ca_certificate: holds no PEM certificate"},
           {{"--backend-url", "https://a.example", "--backend-client-cert-file",
             client_.cert.string()},
            "api.backend_tls.client_key: is required with the other"},
           {{"--backend-url", "https://a.example", "--backend-client-cert-file",
             client_.cert.string(), "--backend-client-key-file", stranger.key.string()},
            "api.backend_tls.client_key: the private key does not belong to the certificate"},
       }) {
    std::vector<std::string> args = {"api", "create", "bad", "--path-prefix", "/bad"};
    args.insert(args.end(), refused.flags.begin(), refused.flags.end());
    CommandResult result = Apimctl(args);
    EXPECT_EQ(result.exit_code, 3) << result.err;  // INVALID_ARGUMENT
    EXPECT_THAT(result.err, HasSubstr(refused.message));
  }
  // Nothing was stored.
  EXPECT_EQ(Apimctl({"api", "get", "bad"}).exit_code, 5);
}

}  // namespace
}  // namespace apim::testing

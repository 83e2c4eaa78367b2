// Certificates and gateway hostname bindings on the real control plane, driven with apimctl and
// gRPC: a certificate is checked when written (the chain parses, the key matches, the dates hold)
// and shows what it says but never its key; hostnames are checked and bound to certificates that
// exist; a bound certificate is not deleted; the gateway's snapshot carries its certificates with
// their keys, and a change to either is pushed to its workers; export leaves keys out and import
// keeps them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/control_plane.h"
#include "tests/support/fake_worker.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"

namespace apim::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr char kExampleNames[] = "DNS:api.example.com,DNS:*.example.com";

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// As `openssl x509 -fingerprint -sha256` prints it, without the label.
std::string Fingerprint(const std::filesystem::path& cert) {
  CommandResult printed = RunCommand(
      "/usr/bin/openssl", {"x509", "-in", cert.string(), "-noout", "-fingerprint", "-sha256"});
  const size_t equals = printed.out.find('=');
  return printed.out.substr(equals + 1, printed.out.find('\n') - equals - 1);
}

class CertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control_plane_.Start();
    stub_ = control_plane_.Stub();
  }

  CommandResult Apimctl(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"--server", control_plane_.address()});
    return RunCommand(APIMCTL_BIN, args, {{"APIM_TOKEN", kTestAdminToken}},
                      std::chrono::seconds(30), stdin_text);
  }

  // Runs apimctl and expects success.
  CommandResult Ok(std::vector<std::string> args, const std::string& stdin_text = "") {
    CommandResult result = Apimctl(std::move(args), stdin_text);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result;
  }

  void CreateCertificate(const std::string& name, const CertificateFiles& files) {
    Ok({"certificate", "create", name, "--cert-file", files.cert.string(), "--key-file",
        files.key.string()});
  }

  v1::Certificate Get(const std::string& name) {
    v1::GetRequest request;
    request.set_name(name);
    v1::Certificate certificate;
    grpc::Status status = stub_->GetCertificate(AuthorizedContext().get(), request, &certificate);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return certificate;
  }

  // A certificate for the key of `files`, as a renewal keeps the key: a new serial and dates.
  CertificateFiles Renew(const CertificateFiles& files, const std::string& name) {
    const std::string base = (dir_.path() / name).string();
    CertificateFiles renewed{base + ".crt", files.key};
    std::ofstream(base + ".ext") << "subjectAltName=" << kExampleNames << "\n";
    EXPECT_EQ(RunCommand("/usr/bin/openssl", {"req", "-new", "-key", files.key.string(), "-subj",
                                              "/CN=" + name, "-out", base + ".csr"})
                  .exit_code,
              0);
    EXPECT_EQ(RunCommand("/usr/bin/openssl",
                         {"x509", "-req", "-in", base + ".csr", "-CA", ca_.cert().string(),
                          "-CAkey", (dir_.path() / "web-ca.key").string(), "-CAcreateserial",
                          "-out", renewed.cert.string(), "-days", "90", "-extfile", base + ".ext"})
                  .exit_code,
              0);
    return renewed;
  }

  TempDir dir_;
  ControlPlane control_plane_{dir_.path()};
  std::unique_ptr<v1::Management::Stub> stub_;
  TestCa ca_{dir_.path(), "web"};
  CertificateFiles web_ = ca_.Issue("web", 90, kExampleNames);
};

TEST_F(CertificatesTest, ACertificateShowsWhatItSaysButNeverItsKey) {
  CommandResult created = Ok({"certificate", "create", "web", "--cert-file", web_.cert.string(),
                              "--key-file", web_.key.string()});
  EXPECT_THAT(created.err, Not(HasSubstr("warning")));
  EXPECT_THAT(created.out, Not(HasSubstr("PRIVATE KEY")));

  v1::Certificate certificate = Get("web");
  EXPECT_TRUE(certificate.private_key_set());
  EXPECT_EQ(certificate.private_key(), "");
  EXPECT_EQ(certificate.certificate_chain(), ReadText(web_.cert));
  EXPECT_EQ(certificate.subject(), "CN=web");
  EXPECT_EQ(certificate.issuer(), "CN=web test CA");
  EXPECT_THAT(certificate.subject_alt_names(),
              ElementsAre("DNS:api.example.com", "DNS:*.example.com"));
  EXPECT_EQ(certificate.sha256_fingerprint(), Fingerprint(web_.cert));
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_NEAR(certificate.not_after().seconds(), now + 90 * 86400, 120);
  EXPECT_NEAR(certificate.not_before().seconds(), now, 120);

  // Neither apimctl's table nor its JSON, for one or all, shows the key.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"certificate", "get", "web"},
                                             {"certificate", "list"},
                                             {"certificate", "get", "web", "-o", "json"},
                                             {"certificate", "list", "-o", "json"}}) {
    CommandResult shown = Ok(args);
    EXPECT_THAT(shown.out, Not(HasSubstr("PRIVATE KEY")));
    EXPECT_THAT(shown.out, HasSubstr("CN=web"));
    EXPECT_THAT(shown.out, HasSubstr("DNS:api.example.com"));
    EXPECT_THAT(shown.out, HasSubstr(Fingerprint(web_.cert)));
  }
  EXPECT_THAT(Ok({"certificate", "get", "web", "-o", "json"}).out,
              HasSubstr("\"private_key_set\": true"));
}

TEST_F(CertificatesTest, RefusesCertificatesThatCannotBeServedNamingTheField) {
  CertificateFiles expired = ca_.Issue("expired", -1, kExampleNames);
  CertificateFiles stranger = ca_.Issue("stranger", 90, kExampleNames);
  const std::string text = (dir_.path() / "not.pem").string();
  std::ofstream(text) << "hello\n";
  struct Case {
    std::string cert;
    std::string key;
    std::string message;
  };
  for (const Case& refused : std::vector<Case>{
           {expired.cert.string(), expired.key.string(),
            "certificate.certificate_chain: the certificate expired at"},
           {web_.cert.string(), stranger.key.string(),
            "certificate.private_key: the private key does not belong to the certificate"},
           {text, web_.key.string(), "certificate.certificate_chain: holds no PEM certificate"},
           {web_.cert.string(), text,
            "certificate.private_key: holds no unencrypted PEM private key"},
       }) {
    CommandResult result = Apimctl(
        {"certificate", "create", "bad", "--cert-file", refused.cert, "--key-file", refused.key});
    EXPECT_EQ(result.exit_code, 3) << result.err;  // INVALID_ARGUMENT
    EXPECT_THAT(result.err, HasSubstr(refused.message));
  }
  EXPECT_EQ(Apimctl({"certificate", "get", "bad"}).exit_code, 5);  // Nothing was stored.
  // Both files are needed to create one; a file that cannot be read is named.
  EXPECT_EQ(Apimctl({"certificate", "create", "bad", "--cert-file", web_.cert.string()}).exit_code,
            64);
  CommandResult missing = Apimctl({"certificate", "create", "bad", "--cert-file", "/nonexistent",
                                   "--key-file", web_.key.string()});
  EXPECT_EQ(missing.exit_code, 66);
  EXPECT_THAT(missing.err, HasSubstr("--cert-file /nonexistent: cannot be read"));
}

TEST_F(CertificatesTest, ACertificateExpiringWithinThirtyDaysIsAcceptedWithAWarning) {
  CertificateFiles soon = ca_.Issue("soon", 10, kExampleNames);
  CommandResult created = Ok({"certificate", "create", "soon", "--cert-file", soon.cert.string(),
                              "--key-file", soon.key.string()});
  EXPECT_THAT(created.err, HasSubstr("apimctl: warning: expires in "));
  EXPECT_THAT(Get("soon").warnings(), ElementsAre(HasSubstr("replace it before then")));
}

TEST_F(CertificatesTest, AnUpdateWithoutAKeyKeepsTheStoredOneIfTheNewChainBelongsToIt) {
  CreateCertificate("web", web_);
  CertificateFiles renewed = Renew(web_, "renewed");
  Ok({"certificate", "update", "web", "--cert-file", renewed.cert.string()});
  v1::Certificate certificate = Get("web");
  EXPECT_EQ(certificate.sha256_fingerprint(), Fingerprint(renewed.cert));
  EXPECT_TRUE(certificate.private_key_set());

  // A chain for another key needs that key.
  CertificateFiles other = ca_.Issue("other", 90, kExampleNames);
  CommandResult refused =
      Apimctl({"certificate", "update", "web", "--cert-file", other.cert.string()});
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("certificate.certificate_chain: its first certificate does "
                                     "not belong to the stored private key"));
  Ok({"certificate", "update", "web", "--cert-file", other.cert.string(), "--key-file",
      other.key.string()});
  EXPECT_EQ(Get("web").sha256_fingerprint(), Fingerprint(other.cert));

  // A replace (no update_mask) that leaves the key out keeps it too.
  v1::UpdateCertificateRequest replace;
  *replace.mutable_certificate() = Get("web");
  v1::Certificate replaced;
  grpc::Status status = stub_->UpdateCertificate(AuthorizedContext().get(), replace, &replaced);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(replaced.private_key_set());
}

TEST_F(CertificatesTest, HostnamesAreBoundToCertificatesAndACertificateInUseIsNotDeleted) {
  CreateCertificate("web", web_);
  CommandResult created =
      Ok({"gateway", "create", "edge", "--tier", "standard", "--hostname", "api.example.com=web",
          "--hostname", "*.example.com=web,shop.example.com=web", "--default-hostname",
          "shop.example.com"});
  EXPECT_THAT(created.err, Not(HasSubstr("warning")));
  EXPECT_THAT(created.out, HasSubstr("api.example.com,*.example.com,shop.example.com"));
  CommandResult json = Ok({"gateway", "get", "edge", "-o", "json"});
  EXPECT_THAT(json.out, HasSubstr("\"hostname\": \"shop.example.com\",\n   \"certificate\": "
                                  "\"web\",\n   \"is_default\": true"));

  CommandResult refused = Apimctl({"certificate", "delete", "web"});
  EXPECT_EQ(refused.exit_code, 9) << refused.err;  // FAILED_PRECONDITION
  EXPECT_THAT(refused.err, HasSubstr("certificate \"web\" is bound by gateways \"edge\""));
  EXPECT_TRUE(Get("web").private_key_set());

  Ok({"gateway", "update", "edge", "--hostname", ""});
  EXPECT_THAT(Ok({"gateway", "get", "edge", "-o", "json"}).out, HasSubstr("\"hostnames\": []"));
  Ok({"certificate", "delete", "web"});
}

TEST_F(CertificatesTest, HostnameBindingsAreCheckedNamingTheField) {
  CreateCertificate("web", web_);
  struct Case {
    std::vector<std::string> flags;
    int exit_code;
    std::string message;
  };
  for (const Case& refused : std::vector<Case>{
           {{"--hostname", "API.example.com=web"},
            3,
            "gateway.hostnames[0].hostname: \"API.example.com\" must be a lowercase DNS name"},
           {{"--hostname", "api.example.com:443=web"}, 3, "gateway.hostnames[0].hostname"},
           {{"--hostname", "*.*.example.com=web"}, 3, "gateway.hostnames[0].hostname"},
           {{"--hostname", "a.example.com=web,a.example.com=web"},
            3,
            "gateway.hostnames[1].hostname: \"a.example.com\" is listed twice"},
           {{"--hostname", "a.example.com=nope"},
            5,
            "gateway.hostnames[0].certificate: certificate \"nope\" not found"},
           {{"--hostname", "a.example.com"}, 64, "must be HOST=CERTIFICATE"},
           {{"--hostname", "a.example.com=web", "--default-hostname", "b.example.com"},
            64,
            "--default-hostname b.example.com is not among the --hostname values"},
           {{"--default-hostname", "b.example.com"}, 64, "--default-hostname"},
       }) {
    std::vector<std::string> args = {"gateway", "create", "edge", "--tier", "standard"};
    args.insert(args.end(), refused.flags.begin(), refused.flags.end());
    CommandResult result = Apimctl(args);
    EXPECT_EQ(result.exit_code, refused.exit_code) << result.err;
    EXPECT_THAT(result.err, HasSubstr(refused.message));
  }
  // Two defaults cannot be said with apimctl, but can over the API.
  v1::CreateGatewayRequest request;
  request.mutable_gateway()->set_name("edge");
  request.mutable_gateway()->set_tier("standard");
  for (const char* hostname : {"a.example.com", "b.example.com"}) {
    v1::HostnameBinding& binding = *request.mutable_gateway()->add_hostnames();
    binding.set_hostname(hostname);
    binding.set_certificate("web");
    binding.set_is_default(true);
  }
  v1::Gateway gateway;
  grpc::Status status = stub_->CreateGateway(AuthorizedContext().get(), request, &gateway);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("gateway.hostnames[1].is_default: only one hostname may be the default, "
                        "and \"a.example.com\" already is"));
  EXPECT_EQ(Apimctl({"gateway", "get", "edge"}).exit_code, 5);  // Nothing was stored.
}

TEST_F(CertificatesTest, AHostnameTheCertificateDoesNotNameIsAcceptedWithAWarning) {
  CreateCertificate("web", web_);
  CommandResult created = Ok({"gateway", "create", "edge", "--tier", "standard", "--hostname",
                              "api.other.org=web,deep.api.example.com=web,x.example.com=web"});
  EXPECT_THAT(created.err, HasSubstr("apimctl: warning: hostname \"api.other.org\" is not among "
                                     "the names of certificate \"web\" (DNS:api.example.com, "
                                     "DNS:*.example.com)"));
  EXPECT_THAT(created.err, HasSubstr("hostname \"deep.api.example.com\" is not among"));
  EXPECT_THAT(created.err, Not(HasSubstr("\"x.example.com\"")));
}

TEST_F(CertificatesTest, TheGatewaySnapshotCarriesItsCertificatesAndChangesArePushed) {
  CertificateFiles other = ca_.Issue("other", 90, "DNS:shop.example.org");
  CreateCertificate("web", web_);
  CreateCertificate("other", other);
  Ok({"gateway", "create", "edge", "--tier", "standard", "--hostname",
      "www.example.com=web,shop.example.org=other,api.example.com=web"});
  v1::RotateGatewayTokenRequest rotate;
  rotate.set_name("edge");
  v1::GatewayToken token;
  ASSERT_TRUE(stub_->RotateGatewayToken(AuthorizedContext().get(), rotate, &token).ok());

  FakeWorker worker(control_plane_.address(), token.token());
  v1::Snapshot snapshot = worker.Next();
  ASSERT_EQ(snapshot.certificates_size(), 2) << snapshot.DebugString();
  const v1::ServedCertificate& served_other = snapshot.certificates(0);
  const v1::ServedCertificate& served_web = snapshot.certificates(1);
  EXPECT_EQ(served_other.name(), "other");
  EXPECT_THAT(served_other.hostnames(), ElementsAre("shop.example.org"));
  EXPECT_FALSE(served_other.is_default());
  EXPECT_EQ(served_web.name(), "web");
  EXPECT_THAT(served_web.hostnames(), ElementsAre("api.example.com", "www.example.com"));
  EXPECT_TRUE(served_web.is_default()) << "no default marked: the first hostname alphabetically";
  EXPECT_EQ(served_web.certificate_chain(), ReadText(web_.cert));
  EXPECT_EQ(served_web.private_key(), ReadText(web_.key));

  // A certificate replaced reaches the worker.
  CertificateFiles rotated = ca_.Issue("rotated", 90, kExampleNames);
  Ok({"certificate", "update", "web", "--cert-file", rotated.cert.string(), "--key-file",
      rotated.key.string()});
  snapshot = worker.Next();
  ASSERT_EQ(snapshot.certificates_size(), 2) << snapshot.DebugString();
  EXPECT_EQ(snapshot.certificates(1).certificate_chain(), ReadText(rotated.cert));
  EXPECT_EQ(snapshot.certificates(1).private_key(), ReadText(rotated.key));

  // So do the gateway's bindings.
  Ok({"gateway", "update", "edge", "--hostname", "shop.example.org=other,api.example.com=web",
      "--default-hostname", "shop.example.org"});
  snapshot = worker.Next();
  ASSERT_EQ(snapshot.certificates_size(), 2) << snapshot.DebugString();
  EXPECT_TRUE(snapshot.certificates(0).is_default());
  EXPECT_FALSE(snapshot.certificates(1).is_default());
  EXPECT_THAT(snapshot.certificates(1).hostnames(), ElementsAre("api.example.com"));
}

TEST_F(CertificatesTest, ExportLeavesKeysOutAndImportKeepsTheStoredOnes) {
  CreateCertificate("web", web_);
  Ok({"gateway", "create", "edge", "--tier", "standard", "--hostname", "api.example.com=web"});
  CommandResult exported = Ok({"export"});
  EXPECT_THAT(exported.out, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(exported.out, HasSubstr("\"certificates\": ["));
  EXPECT_THAT(exported.out, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(exported.out, Not(HasSubstr("sha256_fingerprint")));

  // Unchanged, the document changes nothing.
  EXPECT_THAT(Ok({"import", "-"}, exported.out).out, HasSubstr("0 created, 0 updated"));

  // After a renewal, importing the older document puts its chain back with the stored key.
  Ok({"certificate", "update", "web", "--cert-file", Renew(web_, "renewed").cert.string()});
  CommandResult imported = Ok({"import", "-"}, exported.out);
  EXPECT_THAT(imported.out, HasSubstr("update certificate web (certificate_chain)"));
  v1::Certificate certificate = Get("web");
  EXPECT_EQ(certificate.sha256_fingerprint(), Fingerprint(web_.cert));
  EXPECT_TRUE(certificate.private_key_set());
}

}  // namespace
}  // namespace apim::testing

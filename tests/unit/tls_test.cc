// The pieces of gRPC TLS that need no server: which addresses count as loopback (plaintext is
// allowed only there), and the checks made on PEM files before gRPC sees them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/tls/client_tls.h"
#include "common/tls/loopback.h"
#include "common/tls/pem.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"

namespace apim::tls {
namespace {

using ::testing::HasSubstr;

TEST(IsLoopbackTest, TakesLocalhostTheLoopbackNetworksAndUnixSockets) {
  for (const char* target : {"127.0.0.1:50051", "127.8.9.10:1", "localhost:50051", "[::1]:50051",
                             "dns:///localhost:1", "ipv4:127.0.0.1:1", "unix:/run/apim.sock"}) {
    EXPECT_TRUE(IsLoopback(target)) << target;
  }
}

TEST(IsLoopbackTest, TakesEveryOtherAddressOrNameForRemote) {
  for (const char* target :
       {"10.0.0.1:50051", "0.0.0.0:50051", "[::]:50051", "cp.internal:1", "localhost.example.com:1",
        "128.0.0.1:1", "[::2]:1", "dns:///cp:1", "[::1:1"}) {
    EXPECT_FALSE(IsLoopback(target)) << target;
  }
}

class PemTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path) << text;
    return path;
  }
  testing::TempDir dir_;
  testing::TestCa ca_{dir_.path(), "pem"};
};

TEST_F(PemTest, ReadsCertificatesAndKeysAndTellsWhetherTheyBelongTogether) {
  testing::CertificateFiles one = ca_.Issue("one");
  testing::CertificateFiles two = ca_.Issue("two");
  absl::StatusOr<std::string> chain = ReadCertificates("--cert-file", one.cert.string());
  absl::StatusOr<std::string> key = ReadPrivateKey("--key-file", one.key.string());
  absl::StatusOr<std::string> other_key = ReadPrivateKey("--key-file", two.key.string());
  ASSERT_TRUE(chain.ok() && key.ok() && other_key.ok());
  EXPECT_TRUE(CheckKeyMatchesCertificate(*chain, *key).ok());
  EXPECT_THAT(CheckKeyMatchesCertificate(*chain, *other_key).message(),
              HasSubstr("does not belong"));
}

TEST_F(PemTest, NamesTheFlagAndFileThatCannotBeUsed) {
  EXPECT_EQ(ReadCertificates("--ca-file", "/nonexistent/ca.crt").status().message(),
            "--ca-file /nonexistent/ca.crt: cannot be read");
  const std::string text = Write("text.pem", "hello\n");
  EXPECT_THAT(ReadCertificates("--ca-file", text).status().message(),
              HasSubstr("holds no PEM certificate"));
  // A certificate where a key belongs is not a key.
  EXPECT_THAT(ReadPrivateKey("--key-file", ca_.cert().string()).status().message(),
              HasSubstr("holds no unencrypted PEM private key"));
}

TEST_F(PemTest, ClientCredentialsRefusePlaintextOffLoopbackAndHalfAClientCertificate) {
  ClientTls options;
  EXPECT_THAT(ChannelCredentialsFor("10.1.2.3:50051", options).status().message(),
              HasSubstr("refusing plaintext to 10.1.2.3:50051"));
  EXPECT_TRUE(ChannelCredentialsFor("127.0.0.1:50051", options).ok());
  options.allow_insecure = true;
  EXPECT_TRUE(ChannelCredentialsFor("10.1.2.3:50051", options).ok());

  ClientTls verified;
  verified.ca_file = ca_.cert().string();
  EXPECT_TRUE(ChannelCredentialsFor("10.1.2.3:50051", verified).ok());
  verified.cert_file = ca_.cert().string();
  EXPECT_THAT(ChannelCredentialsFor("10.1.2.3:50051", verified).status().message(),
              HasSubstr("--cert-file and --key-file go together"));
}

}  // namespace
}  // namespace apim::tls

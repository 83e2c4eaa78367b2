#pragma once
// Certificate authorities and certificates for TLS tests, made with the openssl command line in
// the test's directory: short-lived EC P-256 keys, leaves valid for localhost and 127.0.0.1 as
// servers and as clients.

#include <filesystem>
#include <string>

namespace apim::testing {

struct CertificateFiles {
  std::filesystem::path cert;
  std::filesystem::path key;
};

class TestCa {
 public:
  // Makes `dir`/`name`-ca.crt and its key. Throws if openssl fails.
  TestCa(std::filesystem::path dir, std::string name);
  const std::filesystem::path& cert() const { return files_.cert; }
  // A certificate `name` signed by this CA, for localhost and 127.0.0.1 (or the names in
  // `subject_alt_names`, as openssl takes them: "DNS:api.example.com,DNS:*.example.com"), valid
  // for `days` from now (-1: it expired yesterday).
  CertificateFiles Issue(const std::string& name, int days = 2,
                         const std::string& subject_alt_names = "DNS:localhost,IP:127.0.0.1") const;

 private:
  std::filesystem::path dir_;
  std::string name_;
  CertificateFiles files_;
};

}  // namespace apim::testing

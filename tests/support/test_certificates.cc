#include "tests/support/test_certificates.h"

#include <fstream>
#include <stdexcept>
#include <vector>

#include "tests/support/process.h"

namespace apim::testing {
namespace {

void OpenSsl(const std::vector<std::string>& args) {
  CommandResult result = RunCommand("/usr/bin/openssl", args);
  if (result.exit_code != 0) {
    throw std::runtime_error("openssl " + args.front() + " failed: " + result.err);
  }
}

}  // namespace

TestCa::TestCa(std::filesystem::path dir, std::string name)
    : dir_(std::move(dir)),
      name_(std::move(name)),
      files_{dir_ / (name_ + "-ca.crt"), dir_ / (name_ + "-ca.key")} {
  OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", files_.key.string(), "-out", files_.cert.string(), "-days", "2", "-subj",
           "/CN=" + name_ + " test CA"});
}

CertificateFiles TestCa::Issue(const std::string& name, int days,
                               const std::string& subject_alt_names) const {
  const std::filesystem::path base = dir_ / (name_ + "-" + name);
  CertificateFiles files{base.string() + ".crt", base.string() + ".key"};
  const std::string request = base.string() + ".csr";
  const std::string extensions = base.string() + ".ext";
  std::ofstream(extensions) << "subjectAltName=" << subject_alt_names << "\n"
                            << "basicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature\n"
                               "extendedKeyUsage=serverAuth,clientAuth\n";
  OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
           files.key.string(), "-out", request, "-subj", "/CN=" + name});
  OpenSsl({"x509", "-req", "-in", request, "-CA", files_.cert.string(), "-CAkey",
           files_.key.string(), "-CAcreateserial", "-out", files.cert.string(), "-days",
           std::to_string(days), "-extfile", extensions});
  return files;
}

}  // namespace apim::testing

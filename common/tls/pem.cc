#include "common/tls/pem.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/str_cat.h"

namespace apim::tls {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<std::string> ReadWhole(std::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(StrCat(flag, " ", path, ": cannot be read"));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

absl::Status CheckCertificates(std::string_view field, const std::string& pem) {
  Bio bio = MemoryBio(pem);
  int count = 0;
  while (Certificate certificate{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    ++count;
  }
  ERR_clear_error();  // The read that ended the loop.
  if (count == 0) {
    return absl::InvalidArgumentError(
        StrCat(field, ": holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
  }
  return absl::OkStatus();
}

absl::Status CheckPrivateKey(std::string_view field, const std::string& pem) {
  Bio bio = MemoryBio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key)
    return absl::InvalidArgumentError(StrCat(field, ": holds no unencrypted PEM private key"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadCertificates(std::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadWhole(flag, path);
  if (!pem.ok()) return pem.status();
  if (absl::Status checked = CheckCertificates(StrCat(flag, " ", path), *pem); !checked.ok()) {
    return checked;
  }
  return pem;
}

absl::StatusOr<std::string> ReadPrivateKey(std::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadWhole(flag, path);
  if (!pem.ok()) return pem.status();
  if (absl::Status checked = CheckPrivateKey(StrCat(flag, " ", path), *pem); !checked.ok()) {
    return checked;
  }
  return pem;
}

absl::Status CheckKeyMatchesCertificate(const std::string& chain_pem, const std::string& key_pem) {
  Bio chain = MemoryBio(chain_pem);
  Bio key_bio = MemoryBio(key_pem);
  Certificate certificate(PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr));
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  const bool matches = certificate && key && X509_check_private_key(certificate.get(), key.get());
  ERR_clear_error();
  if (!matches) {
    return absl::InvalidArgumentError("the private key does not belong to the certificate");
  }
  return absl::OkStatus();
}

std::string OpenSslErrorText(std::string_view if_none) {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return std::string(if_none);
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

std::string SystemCaFile() {
  if (const char* file = std::getenv("SSL_CERT_FILE"); file != nullptr && *file != '\0') {
    return file;
  }
  return "/etc/ssl/certs/ca-certificates.crt";
}

}  // namespace apim::tls

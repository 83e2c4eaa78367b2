#include "common/tls/pem.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
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

absl::Status NoCertificate(std::string_view field) {
  return absl::InvalidArgumentError(
      StrCat(field, ": holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
}

// One line, RFC 2253, control characters and non-ASCII bytes escaped by OpenSSL.
std::string NameText(const X509_NAME* name) {
  Bio bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

int64_t UnixSeconds(const ASN1_TIME* time) {
  std::tm parts{};
  ASN1_TIME_to_tm(time, &parts);
  return static_cast<int64_t>(timegm(&parts));
}

std::string_view AsciiText(const ASN1_STRING* text) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
          static_cast<size_t>(ASN1_STRING_length(text))};
}

// The DNS names and IP addresses; other kinds (email, URI) say nothing about hostnames.
std::vector<std::string> SubjectAltNames(const X509* certificate) {
  std::vector<std::string> names;
  auto* general = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (general == nullptr) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(general); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general, i);
    if (name->type == GEN_DNS) {
      names.push_back(StrCat("DNS:", AsciiText(name->d.dNSName)));
    } else if (name->type == GEN_IPADD) {
      const std::string_view address = AsciiText(name->d.iPAddress);
      const int family = address.size() == 4 ? AF_INET : address.size() == 16 ? AF_INET6 : 0;
      char text[INET6_ADDRSTRLEN] = {};
      if (family != 0 && inet_ntop(family, address.data(), text, sizeof text) != nullptr) {
        names.push_back(StrCat("IP:", text));
      }
    }
  }
  GENERAL_NAMES_free(general);
  return names;
}

std::string Sha256Fingerprint(const X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(certificate, EVP_sha256(), digest, &length);
  constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string text;
  for (unsigned int i = 0; i < length; ++i) {
    if (i > 0) text.push_back(':');
    text.push_back(kHex[digest[i] >> 4]);
    text.push_back(kHex[digest[i] & 0xf]);
  }
  return text;
}

std::string Lowercase(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
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
    return NoCertificate(field);
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

absl::StatusOr<LeafCertificate> ReadLeafCertificate(std::string_view field,
                                                    const std::string& chain_pem) {
  Bio bio = MemoryBio(chain_pem);
  Certificate certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!certificate) {
    return NoCertificate(field);
  }
  return LeafCertificate{
      .subject = NameText(X509_get_subject_name(certificate.get())),
      .issuer = NameText(X509_get_issuer_name(certificate.get())),
      .subject_alt_names = SubjectAltNames(certificate.get()),
      .not_before = UnixSeconds(X509_get0_notBefore(certificate.get())),
      .not_after = UnixSeconds(X509_get0_notAfter(certificate.get())),
      .sha256_fingerprint = Sha256Fingerprint(certificate.get()),
  };
}

bool CoversHostname(const LeafCertificate& leaf, std::string_view hostname) {
  const std::string wanted = Lowercase(hostname);
  // A wildcard name covers one label: "*.example.com" covers "api.example.com" (and itself).
  const size_t dot = wanted.find('.');
  const std::string one_label_up = dot == std::string::npos ? "" : StrCat("*", wanted.substr(dot));
  return std::any_of(leaf.subject_alt_names.begin(), leaf.subject_alt_names.end(),
                     [&](const std::string& name) {
                       if (!name.starts_with("DNS:")) return false;
                       const std::string dns = Lowercase(std::string_view(name).substr(4));
                       return dns == wanted || dns == one_label_up;
                     });
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

#include "dataplane/net/tls_certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/tls/pem.h"

namespace apim::dataplane {

absl::Status UseCertificateChainAndKey(SSL_CTX* context, const std::string& chain_pem,
                                       const std::string& key_pem) {
  BIO* chain_bio = BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size()));
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  bool used = false;
  if (X509* leaf = PEM_read_bio_X509(chain_bio, nullptr, nullptr, nullptr)) {
    used = SSL_CTX_use_certificate(context, leaf) == 1;
    X509_free(leaf);
    while (used) {
      X509* intermediate = PEM_read_bio_X509(chain_bio, nullptr, nullptr, nullptr);
      if (intermediate == nullptr) break;
      used = SSL_CTX_add0_chain_cert(context, intermediate) == 1;  // Takes it.
      if (!used) X509_free(intermediate);
    }
  }
  if (used) {
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    used = key != nullptr && SSL_CTX_use_PrivateKey(context, key) == 1 &&
           SSL_CTX_check_private_key(context) == 1;
    EVP_PKEY_free(key);
  }
  BIO_free(chain_bio);
  BIO_free(key_bio);
  if (!used) return absl::InvalidArgumentError(tls::OpenSslErrorText("it does not parse"));
  ERR_clear_error();  // The end of the chain reads as an error.
  return absl::OkStatus();
}

}  // namespace apim::dataplane

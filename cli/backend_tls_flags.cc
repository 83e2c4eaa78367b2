#include "cli/backend_tls_flags.h"

#include <fstream>
#include <iterator>

#include "common/str_cat.h"

namespace apim::cli {

absl::StatusOr<std::string> ReadPemFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return absl::NotFoundError(StrCat(flag, " ", path, ": cannot be read"));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

BackendTlsFlags::BackendTlsFlags(CLI::App& app) {
  ca_ = app.add_option("--backend-ca-file", ca_file_,
                       "https backend: trust the CA certificates in this PEM file")
            ->type_name("FILE");
  client_cert_ = app.add_option("--backend-client-cert-file", client_cert_file_,
                                "https backend: client certificate (PEM) for mTLS")
                     ->type_name("FILE");
  client_key_ = app.add_option("--backend-client-key-file", client_key_file_,
                               "https backend: the client certificate's key (PEM; never shown)")
                    ->type_name("FILE");
  server_name_option_ =
      app.add_option("--backend-server-name", server_name_,
                     "https backend: verify and send (SNI) this name instead of the URL's host");
  skip_ = app.add_option("--backend-skip-verification", skip_verification_,
                         "https backend: do not verify its certificate (logged as a warning)")
              ->expected(0, 1)
              ->default_str("true");
}

absl::Status BackendTlsFlags::Apply(v1::Api& api, std::vector<std::string>& given) const {
  v1::BackendTls& tls = *api.mutable_backend_tls();
  auto file = [&](CLI::Option* option, const std::string& path, const char* field,
                  void (v1::BackendTls::*set)(const std::string&)) -> absl::Status {
    if (option->count() == 0) return absl::OkStatus();
    absl::StatusOr<std::string> pem = ReadPemFile(option->get_name(), path);
    if (!pem.ok()) return pem.status();
    (tls.*set)(*pem);
    given.push_back(StrCat("backend_tls.", field));
    return absl::OkStatus();
  };
  if (absl::Status s = file(ca_, ca_file_, "ca_certificate", &v1::BackendTls::set_ca_certificate);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = file(client_cert_, client_cert_file_, "client_certificate",
                            &v1::BackendTls::set_client_certificate);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          file(client_key_, client_key_file_, "client_key", &v1::BackendTls::set_client_key);
      !s.ok()) {
    return s;
  }
  if (server_name_option_->count() > 0) {
    tls.set_server_name(server_name_);
    given.push_back("backend_tls.server_name");
  }
  if (skip_->count() > 0) {
    tls.set_skip_verification(skip_verification_);
    given.push_back("backend_tls.skip_verification");
  }
  if (tls.ByteSizeLong() == 0) api.clear_backend_tls();
  return absl::OkStatus();
}

}  // namespace apim::cli

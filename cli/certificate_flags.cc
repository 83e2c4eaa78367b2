#include "cli/certificate_flags.h"

#include <string_view>

#include "absl/status/statusor.h"
#include "cli/backend_tls_flags.h"
#include "common/str_cat.h"

namespace apim::cli {
namespace {

// "api.example.com=web,www.example.com=web": one binding per non-empty item.
std::vector<std::pair<std::string, std::string>> SplitBindings(
    const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> bindings;
  for (std::string_view text : values) {
    while (!text.empty()) {
      const size_t comma = text.find(',');
      const std::string_view item = text.substr(0, comma);
      text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
      if (item.empty()) continue;
      const size_t equals = item.find('=');
      bindings.emplace_back(
          std::string(item.substr(0, equals)),
          equals == std::string_view::npos ? std::string() : std::string(item.substr(equals + 1)));
    }
  }
  return bindings;
}

}  // namespace

CertificateFlags::CertificateFlags(CLI::App& app, bool create) {
  // apimctl's own --cert-file/--key-file (mTLS to the control plane) go before the resource.
  cert_ = app.add_option("--cert-file", cert_file_,
                         "PEM: the certificate first, then its intermediates")
              ->type_name("FILE");
  key_ = app.add_option("--key-file", key_file_,
                        "PEM: the certificate's private key, unencrypted (never shown again)")
             ->type_name("FILE");
  if (create) {
    cert_->required();
    key_->required();
  }
}

absl::Status CertificateFlags::Apply(v1::Certificate& certificate,
                                     std::vector<std::string>& given) const {
  if (cert_->count() > 0) {
    absl::StatusOr<std::string> pem = ReadPemFile("--cert-file", cert_file_);
    if (!pem.ok()) return pem.status();
    certificate.set_certificate_chain(*std::move(pem));
    given.push_back("certificate_chain");
  }
  if (key_->count() > 0) {
    absl::StatusOr<std::string> pem = ReadPemFile("--key-file", key_file_);
    if (!pem.ok()) return pem.status();
    certificate.set_private_key(*std::move(pem));
    given.push_back("private_key");
  }
  return absl::OkStatus();
}

HostnameFlags::HostnameFlags(CLI::App& app) {
  bindings_option_ =
      app.add_option("--hostname", bindings_,
                     "Serve HOST over TLS with the certificate named CERTIFICATE; repeat the "
                     "flag or separate with commas; the list replaces the stored one (\"\" "
                     "clears it)")
          ->type_name("HOST=CERTIFICATE")
          ->take_all()
          ->check(CLI::Validator(
              [](std::string& text) -> std::string {
                for (const auto& [host, certificate] : SplitBindings({text})) {
                  if (host.empty() || certificate.empty()) {
                    return StrCat("\"", text, "\" must be HOST=CERTIFICATE");
                  }
                }
                return "";
              },
              ""));
  app.add_option("--default-hostname", default_hostname_,
                 "The hostname whose certificate clients without SNI (or with an unknown name) "
                 "get; one of --hostname's (default: the first, alphabetically)")
      ->type_name("HOST")
      ->needs(bindings_option_);
}

absl::Status HostnameFlags::Apply(v1::Gateway& gateway, std::vector<std::string>& given) const {
  if (bindings_option_->count() == 0) return absl::OkStatus();
  bool default_found = default_hostname_.empty();
  gateway.clear_hostnames();
  for (auto& [host, certificate] : SplitBindings(bindings_)) {
    v1::HostnameBinding& binding = *gateway.add_hostnames();
    binding.set_is_default(host == default_hostname_);
    default_found = default_found || binding.is_default();
    binding.set_hostname(std::move(host));
    binding.set_certificate(std::move(certificate));
  }
  if (!default_found) {
    return absl::InvalidArgumentError(
        StrCat("--default-hostname ", default_hostname_, " is not among the --hostname values"));
  }
  given.push_back("hostnames");
  return absl::OkStatus();
}

}  // namespace apim::cli

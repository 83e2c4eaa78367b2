#pragma once
// apimctl's flags for TLS to clients: a certificate's PEM files (certificate create/update), and
// a gateway's hostname bindings (gateway create/update), which the generic field flags do not
// reach. Each flag given becomes its update_mask path, so an update changes only what it names:
// a certificate updated with --cert-file alone keeps its stored key.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "apim/v1/resources.pb.h"

namespace apim::cli {

class CertificateFlags {
 public:
  // `create`: both files are required.
  CertificateFlags(CLI::App& app, bool create);
  // Reads the files given into `certificate` and appends their update_mask paths to `given`.
  // Errors: a file that cannot be read (named).
  absl::Status Apply(v1::Certificate& certificate, std::vector<std::string>& given) const;

 private:
  std::string cert_file_;
  std::string key_file_;
  CLI::Option* cert_ = nullptr;
  CLI::Option* key_ = nullptr;
};

class HostnameFlags {
 public:
  explicit HostnameFlags(CLI::App& app);
  // Replaces the gateway's hostnames with those of --hostname HOST=CERTIFICATE (all of them:
  // "" clears the list) and marks the one --default-hostname names; appends "hostnames" to
  // `given`. Errors: a default that is not among the hostnames.
  absl::Status Apply(v1::Gateway& gateway, std::vector<std::string>& given) const;

 private:
  std::vector<std::string> bindings_;
  std::string default_hostname_;
  CLI::Option* bindings_option_ = nullptr;
};

}  // namespace apim::cli

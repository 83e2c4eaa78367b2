#pragma once
// apimctl's flags for an API's backend TLS (apim.v1.BackendTls, a message the generic field flags
// do not reach): PEM files are read by apimctl, and each flag given becomes its own update_mask
// path (backend_tls.server_name, ...), so an update changes only what it names and a stored
// client key stays unless replaced.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"

namespace apim::cli {

// The whole file at `path`, for PEM text the server checks; the error names `flag` and the path.
absl::StatusOr<std::string> ReadPemFile(const std::string& flag, const std::string& path);

class BackendTlsFlags {
 public:
  explicit BackendTlsFlags(CLI::App& app);
  // Sets the fields given on `api` and appends their update_mask paths to `given`. Errors: a file
  // that cannot be read (named).
  absl::Status Apply(v1::Api& api, std::vector<std::string>& given) const;

 private:
  std::string ca_file_;
  std::string client_cert_file_;
  std::string client_key_file_;
  std::string server_name_;
  bool skip_verification_ = false;
  CLI::Option* ca_ = nullptr;
  CLI::Option* client_cert_ = nullptr;
  CLI::Option* client_key_ = nullptr;
  CLI::Option* server_name_option_ = nullptr;
  CLI::Option* skip_ = nullptr;
};

}  // namespace apim::cli

#pragma once
// apimctl's flags for a gateway's shared state (apim.v1.SharedState, the Redis server its workers
// count on; a message the generic field flags do not reach). Each flag given becomes its own
// update_mask path (shared_state.redis_address, ...), so an update changes only what it names and
// a stored password stays unless replaced. The password is read from a file, never taken from
// the command line, where it would show in the process list and the shell's history.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "apim/v1/resources.pb.h"

namespace apim::cli {

class SharedStateFlags {
 public:
  // `update`: also the flags that clear (--no-shared-state, --no-redis-password, --no-redis-ca).
  SharedStateFlags(CLI::App& app, bool update);
  // Sets the fields given on `gateway` and appends their update_mask paths to `given`. Errors: a
  // file that cannot be read, or a password file whose first line is empty (named).
  absl::Status Apply(v1::Gateway& gateway, std::vector<std::string>& given) const;

 private:
  std::string address_;
  bool tls_ = false;
  std::string ca_file_;
  std::string username_;
  std::string password_file_;
  uint32_t database_ = 0;
  std::string key_prefix_;
  CLI::Option* address_option_ = nullptr;
  CLI::Option* tls_option_ = nullptr;
  CLI::Option* ca_option_ = nullptr;
  CLI::Option* username_option_ = nullptr;
  CLI::Option* password_option_ = nullptr;
  CLI::Option* database_option_ = nullptr;
  CLI::Option* key_prefix_option_ = nullptr;
  CLI::Option* clear_all_ = nullptr;       // --no-shared-state
  CLI::Option* clear_password_ = nullptr;  // --no-redis-password
  CLI::Option* clear_ca_ = nullptr;        // --no-redis-ca
};

}  // namespace apim::cli

#include "cli/shared_state_flags.h"

#include "absl/status/statusor.h"
#include "cli/backend_tls_flags.h"
#include "common/files.h"
#include "common/str_cat.h"

namespace apim::cli {

SharedStateFlags::SharedStateFlags(CLI::App& app, bool update) {
  address_option_ = app.add_option("--redis-address", address_,
                                   "Shared state: the Redis server the gateway's workers count on "
                                   "(rate limits, quotas, concurrent streams)")
                        ->type_name("HOST:PORT");
  tls_option_ = app.add_option("--redis-tls", tls_,
                               "Shared state: speak TLS to Redis, verifying the address's host")
                    ->expected(0, 1)
                    ->default_str("true");
  ca_option_ = app.add_option("--redis-ca-file", ca_file_,
                              "Shared state: trust the CA certificates in this PEM file for "
                              "Redis's TLS (default: the workers' CA bundle)")
                   ->type_name("FILE");
  username_option_ =
      app.add_option("--redis-user", username_,
                     "Shared state: the Redis ACL user to AUTH as (default: the password alone)")
          ->type_name("NAME");
  password_option_ = app.add_option("--redis-password-file", password_file_,
                                    "Shared state: the Redis password, the first line of FILE "
                                    "(- is stdin); never shown again")
                         ->type_name("FILE");
  database_option_ =
      app.add_option("--redis-database", database_, "Shared state: the Redis database (SELECT)")
          ->type_name("N");
  key_prefix_option_ = app.add_option("--redis-key-prefix", key_prefix_,
                                      "Shared state: prepended to every key (default "
                                      "\"apim:GATEWAY:\")")
                           ->type_name("PREFIX");
  if (!update) return;
  clear_password_ = app.add_flag("--no-redis-password")
                        ->description("Shared state: forget the stored Redis password")
                        ->excludes(password_option_);
  clear_ca_ = app.add_flag("--no-redis-ca")
                  ->description(
                      "Shared state: forget the CA certificates (back to the workers' "
                      "bundle)")
                  ->excludes(ca_option_);
  clear_all_ = app.add_flag("--no-shared-state")
                   ->description(
                       "Remove the shared state, password included: each worker "
                       "counts alone");
  for (CLI::Option* option :
       {address_option_, tls_option_, ca_option_, username_option_, password_option_,
        database_option_, key_prefix_option_, clear_password_, clear_ca_}) {
    clear_all_->excludes(option);
  }
}

absl::Status SharedStateFlags::Apply(v1::Gateway& gateway, std::vector<std::string>& given) const {
  if (clear_all_ != nullptr && clear_all_->count() > 0) {
    gateway.clear_shared_state();
    given.push_back("shared_state");
    return absl::OkStatus();
  }
  const size_t given_before = given.size();
  v1::SharedState& shared = *gateway.mutable_shared_state();
  auto mark = [&given](CLI::Option* option, const char* field) {
    if (option == nullptr || option->count() == 0) return false;
    given.push_back(StrCat("shared_state.", field));
    return true;
  };
  if (mark(address_option_, "redis_address")) shared.set_redis_address(address_);
  if (mark(tls_option_, "tls")) shared.set_tls(tls_);
  if (ca_option_->count() > 0) {
    absl::StatusOr<std::string> pem = ReadPemFile("--redis-ca-file", ca_file_);
    if (!pem.ok()) return pem.status();
    shared.set_ca_certificate(*std::move(pem));
    given.push_back("shared_state.ca_certificate");
  }
  if (mark(clear_ca_, "ca_certificate")) shared.clear_ca_certificate();
  if (mark(username_option_, "username")) shared.set_username(username_);
  if (password_option_->count() > 0) {
    // Read as token files are: the first line, without the line ending or surrounding spaces.
    absl::StatusOr<std::string> password =
        ReadFirstLine(password_file_ == "-" ? "/dev/stdin" : password_file_);
    if (!password.ok()) {
      return absl::Status(password.status().code(),
                          StrCat("--redis-password-file: ", password.status().message()));
    }
    shared.set_password(*std::move(password));
    given.push_back("shared_state.password");
  }
  if (mark(clear_password_, "password")) shared.clear_password();
  if (mark(database_option_, "database")) shared.set_database(database_);
  if (mark(key_prefix_option_, "key_prefix")) shared.set_key_prefix(key_prefix_);
  // Without any of these flags, create sends no shared state at all.
  if (given.size() == given_before) gateway.clear_shared_state();
  return absl::OkStatus();
}

}  // namespace apim::cli

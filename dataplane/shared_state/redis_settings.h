#pragma once
// Where a worker counts what must hold across all workers of its gateway: a Redis server, from
// the gateway's shared-state setting (pushed in the snapshot) or from the worker's own flags
// (standalone workers; the flags win over the snapshot).

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"

namespace apim::dataplane {

struct RedisSettings {
  std::string host;  // A name or an address (IPv6 without brackets).
  uint16_t port = 6379;
  bool tls = false;
  std::string ca_pem;  // With tls: the CAs to trust; empty: the worker's default bundle.
  std::string username;
  std::string password;
  uint32_t database = 0;
  std::string key_prefix;

  bool operator==(const RedisSettings&) const = default;
  // "host:port" (with "tls" when it is), for logs; never the password.
  std::string Describe() const;
};

// The snapshot's setting; null when it has none (an empty address). Errors name the field.
absl::StatusOr<std::shared_ptr<const RedisSettings>> RedisSettingsFromSnapshot(
    const v1::Snapshot& snapshot);

// --redis URL: redis://[USER@]HOST:PORT[/DATABASE], rediss:// for TLS. The password and the CA
// come from files (--redis-password-file, --redis-ca-file), never from the command line.
absl::StatusOr<RedisSettings> RedisSettingsFromUrl(const std::string& url);

}  // namespace apim::dataplane

#pragma once
// The admin token guards the Management API. Only its SHA-256 is kept (in the store), so a copy
// of the database does not reveal it.

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/sha256.h"
#include "controlplane/store/store.h"

namespace apim::controlplane {

struct AdminToken {
  std::string sha256_hex;
  // Set only when no token was configured or stored: the new token, to be shown once.
  std::optional<std::string> generated;
};

// A configured token (flag file or environment) replaces the stored hash; without one the stored
// hash stays in force; on first start a random token is generated.
absl::StatusOr<AdminToken> ResolveAdminToken(store::Store& store,
                                             const std::optional<std::string>& configured);

// 32 random bytes as hex: admin and gateway tokens.
absl::StatusOr<std::string> GenerateToken();

// Compares in constant time, so response timing does not leak how much of a guess was right.
bool TokenMatches(std::string_view expected_sha256_hex, std::string_view presented);

}  // namespace apim::controlplane

#include "controlplane/admin_token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>

namespace apim::controlplane {
namespace {

constexpr std::string_view kSettingKey = "admin_token_sha256";

}  // namespace

absl::StatusOr<std::string> GenerateToken() {
  std::array<unsigned char, 32> random;
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return absl::InternalError("token: no randomness available");
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(random.data()), random.size()));
}

bool TokenMatches(std::string_view expected_sha256_hex, std::string_view presented) {
  std::string actual = Sha256Hex(presented);
  return actual.size() == expected_sha256_hex.size() &&
         CRYPTO_memcmp(actual.data(), expected_sha256_hex.data(), actual.size()) == 0;
}

absl::StatusOr<AdminToken> ResolveAdminToken(store::Store& store,
                                             const std::optional<std::string>& configured) {
  AdminToken token;
  if (configured) {
    if (configured->size() < 16) {
      return absl::InvalidArgumentError("admin token: must be at least 16 characters");
    }
    token.sha256_hex = Sha256Hex(*configured);
  } else {
    absl::StatusOr<std::optional<std::string>> stored = store.GetSetting(kSettingKey);
    if (!stored.ok()) return stored.status();
    if (*stored) {
      token.sha256_hex = **stored;
      return token;
    }
    absl::StatusOr<std::string> generated = GenerateToken();
    if (!generated.ok()) return generated.status();
    token.generated = *std::move(generated);
    token.sha256_hex = Sha256Hex(*token.generated);
  }
  if (absl::Status saved = store.PutSetting(kSettingKey, token.sha256_hex); !saved.ok()) {
    return saved;
  }
  return token;
}

}  // namespace apim::controlplane

#include <optional>
#include <string>
#include <vector>

#include "common/return_if_error.h"
#include "common/str_cat.h"
#include "controlplane/store/rows.h"
#include "controlplane/store/store.h"

// What the store keeps besides resources, with no revision bump: each gateway's worker token
// hash, and control-plane settings such as the admin token hash.
namespace apim::store {

absl::StatusOr<std::string> Store::GatewayTokenHash(std::string_view gateway) {
  std::lock_guard lock(mu_);
  absl::StatusOr<v1::Gateway> exists = SelectOne<v1::Gateway>(*db_, gateway);
  if (!exists.ok()) return exists.status();
  absl::StatusOr<std::vector<std::string>> hash =
      QueryNames(*db_, "SELECT sha256 FROM gateway_tokens WHERE gateway = ?", gateway);
  if (!hash.ok()) return hash.status();
  if (hash->empty()) {
    return absl::FailedPreconditionError(StrCat("gateway \"", gateway,
                                                "\" has no worker token; create one with "
                                                "`apimctl gateway token ",
                                                gateway, "`"));
  }
  return hash->front();
}

absl::Status Store::PutGatewayTokenHash(std::string_view gateway, std::string_view sha256_hex) {
  std::lock_guard lock(mu_);
  absl::StatusOr<v1::Gateway> exists = SelectOne<v1::Gateway>(*db_, gateway);
  if (!exists.ok()) return exists.status();
  absl::StatusOr<Statement> upsert = db_->Prepare(
      "INSERT INTO gateway_tokens (gateway, sha256, create_time_ms) VALUES (?, ?, ?) "
      "ON CONFLICT (gateway) DO UPDATE SET sha256 = excluded.sha256, "
      "create_time_ms = excluded.create_time_ms");
  if (!upsert.ok()) return upsert.status();
  APIM_RETURN_IF_ERROR(upsert->Bind(1, gateway).Bind(2, sha256_hex).Bind(3, NowMs()).Run());
  // Not a revision (snapshots do not change), but streams joined with the old token must end.
  Committed();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Store::GetSetting(std::string_view key) {
  std::lock_guard lock(mu_);
  absl::StatusOr<Statement> select = db_->Prepare("SELECT value FROM settings WHERE key = ?");
  if (!select.ok()) return select.status();
  select->Bind(1, key);
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(select->ColumnText(0));
}

absl::Status Store::PutSetting(std::string_view key, std::string_view value) {
  std::lock_guard lock(mu_);
  absl::StatusOr<Statement> upsert = db_->Prepare(
      "INSERT INTO settings (key, value) VALUES (?, ?) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  if (!upsert.ok()) return upsert.status();
  return upsert->Bind(1, key).Bind(2, value).Run();
}

}  // namespace apim::store

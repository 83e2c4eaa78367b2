#include "controlplane/store/rows.h"

#include <chrono>

namespace apim::store {
namespace {

// The ordered list of names `owner` has in a link table, as `sql` selects them.
absl::Status ReadLinks(Db& db, std::string_view sql, std::string_view owner,
                       google::protobuf::RepeatedPtrField<std::string>& items) {
  absl::StatusOr<std::vector<std::string>> names = QueryNames(db, sql, owner);
  if (!names.ok()) return names.status();
  items.Assign(names->begin(), names->end());
  return absl::OkStatus();
}

// Replaces the ordered list of names `owner` has in a link table (an API's gateways, a
// product's APIs).
absl::Status ReplaceLinks(Db& db, std::string_view table, std::string_view owner_column,
                          std::string_view item_column, std::string_view owner,
                          const google::protobuf::RepeatedPtrField<std::string>& items) {
  absl::StatusOr<Statement> clear =
      db.Prepare(StrCat("DELETE FROM ", table, " WHERE ", owner_column, " = ?"));
  if (!clear.ok()) return clear.status();
  APIM_RETURN_IF_ERROR(clear->Bind(1, owner).Run());
  for (int i = 0; i < items.size(); ++i) {
    absl::StatusOr<Statement> add =
        db.Prepare(StrCat("INSERT INTO ", table, " (", owner_column, ", ", item_column,
                          ", position) VALUES (?, ?, ?)"));
    if (!add.ok()) return add.status();
    APIM_RETURN_IF_ERROR(add->Bind(1, owner).Bind(2, items.Get(i)).Bind(3, int64_t{i}).Run());
  }
  return absl::OkStatus();
}

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<std::vector<std::string>> QueryNames(Db& db, std::string_view sql,
                                                    std::string_view param) {
  absl::StatusOr<Statement> query = db.Prepare(sql);
  if (!query.ok()) return query.status();
  if (!param.empty()) query->Bind(1, param);
  std::vector<std::string> names;
  while (true) {
    absl::StatusOr<bool> row = query->Step();
    if (!row.ok()) return row.status();
    if (!*row) return names;
    names.push_back(query->ColumnText(0));
  }
}

absl::StatusOr<int64_t> BumpRevision(Db& db) {
  absl::StatusOr<Statement> bump =
      db.Prepare("UPDATE store_revision SET revision = revision + 1 RETURNING revision");
  if (!bump.ok()) return bump.status();
  absl::StatusOr<bool> row = bump->Step();
  if (!row.ok()) return row.status();
  return bump->ColumnInt(0);
}

absl::Status ReadChildren(Db& db, v1::Gateway& gateway) {
  absl::StatusOr<Statement> select = db.Prepare(
      "SELECT hostname, certificate, is_default FROM gateway_hostnames WHERE gateway = ? "
      "ORDER BY position");
  if (!select.ok()) return select.status();
  select->Bind(1, gateway.name());
  gateway.clear_hostnames();
  while (true) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    v1::HostnameBinding& binding = *gateway.add_hostnames();
    binding.set_hostname(select->ColumnText(0));
    binding.set_certificate(select->ColumnText(1));
    binding.set_is_default(select->ColumnInt(2) != 0);
  }
}

absl::Status ReadChildren(Db& db, v1::Api& api) {
  return ReadLinks(db, "SELECT gateway FROM api_gateways WHERE api = ? ORDER BY position",
                   api.name(), *api.mutable_gateways());
}

absl::Status ReadChildren(Db& db, v1::Product& product) {
  return ReadLinks(db, "SELECT api FROM product_apis WHERE product = ? ORDER BY position",
                   product.name(), *product.mutable_apis());
}

absl::Status WriteChildren(Db& db, const v1::Gateway& gateway) {
  absl::StatusOr<Statement> clear = db.Prepare("DELETE FROM gateway_hostnames WHERE gateway = ?");
  if (!clear.ok()) return clear.status();
  APIM_RETURN_IF_ERROR(clear->Bind(1, gateway.name()).Run());
  for (int i = 0; i < gateway.hostnames_size(); ++i) {
    const v1::HostnameBinding& binding = gateway.hostnames(i);
    absl::StatusOr<Statement> add = db.Prepare(
        "INSERT INTO gateway_hostnames (gateway, hostname, certificate, is_default, position) "
        "VALUES (?, ?, ?, ?, ?)");
    if (!add.ok()) return add.status();
    APIM_RETURN_IF_ERROR(add->Bind(1, gateway.name())
                             .Bind(2, binding.hostname())
                             .Bind(3, binding.certificate())
                             .Bind(4, int64_t{binding.is_default()})
                             .Bind(5, int64_t{i})
                             .Run());
  }
  return absl::OkStatus();
}

absl::Status WriteChildren(Db& db, const v1::Api& api) {
  return ReplaceLinks(db, "api_gateways", "api", "gateway", api.name(), api.gateways());
}

absl::Status WriteChildren(Db& db, const v1::Product& product) {
  return ReplaceLinks(db, "product_apis", "product", "api", product.name(), product.apis());
}

}  // namespace apim::store

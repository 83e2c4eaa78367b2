#pragma once
// Reading and writing the rows of one resource, shared by the store's CRUD, its integrity checks
// and snapshot building. Internal to the store; everything runs on the caller's connection and
// inside the caller's transaction.

#include <google/protobuf/util/time_util.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"
#include "common/return_if_error.h"
#include "common/str_cat.h"
#include "controlplane/store/resource_tables.h"
#include "controlplane/store/sqlite.h"

namespace apim::store {

int64_t NowMs();

// Runs a query and collects its first column as text.
absl::StatusOr<std::vector<std::string>> QueryNames(Db& db, std::string_view sql,
                                                    std::string_view param);

// Every committed change gets the next revision; it becomes the etag of what the change wrote.
absl::StatusOr<int64_t> BumpRevision(Db& db);

// SQL text for one resource type, built once from its column list.
template <typename Resource>
struct Sql {
  using T = Table<Resource>;
  static std::string Columns() {
    return StrCat(T::kKey, ", ", StrJoin(T::kColumns, ", "),
                  ", revision, create_time_ms, update_time_ms");
  }
  static const std::string& Select() {
    static const std::string sql = StrCat("SELECT ", Columns(), " FROM ", T::kTable);
    return sql;
  }
  static const std::string& Insert() {
    static const std::string sql = [] {
      std::string placeholders = "?";
      for (size_t i = 0; i < T::kColumns.size() + 3; ++i) placeholders += ", ?";
      return StrCat("INSERT INTO ", T::kTable, " (", Columns(), ") VALUES (", placeholders, ")");
    }();
    return sql;
  }
  static const std::string& Update() {
    static const std::string sql =
        StrCat("UPDATE ", T::kTable, " SET ", StrJoin(T::kColumns, " = ?, "),
               " = ?, revision = ?, update_time_ms = ? WHERE ", T::kKey, " = ?");
    return sql;
  }
};

// Reads a full row as selected by Sql<Resource>::Select().
template <typename Resource>
Resource ReadRow(Statement& row) {
  using google::protobuf::util::TimeUtil;
  using T = Table<Resource>;
  Resource resource;
  T::SetKey(resource, row.ColumnText(0));
  T::Read(row, 1, resource);
  const int meta = 1 + static_cast<int>(T::kColumns.size());
  resource.set_etag(std::to_string(row.ColumnInt(meta)));
  *resource.mutable_create_time() = TimeUtil::MillisecondsToTimestamp(row.ColumnInt(meta + 1));
  *resource.mutable_update_time() = TimeUtil::MillisecondsToTimestamp(row.ColumnInt(meta + 2));
  return resource;
}

// Rows owned by a resource but stored in other tables: a gateway's hostnames, an API's gateways,
// a product's APIs.
// Resources without any use the templates; the overloads below are preferred where they match.
template <typename Resource>
absl::Status ReadChildren(Db&, Resource&) {
  return absl::OkStatus();
}
absl::Status ReadChildren(Db& db, v1::Gateway& gateway);
absl::Status ReadChildren(Db& db, v1::Api& api);
absl::Status ReadChildren(Db& db, v1::Product& product);

template <typename Resource>
absl::Status WriteChildren(Db&, const Resource&) {
  return absl::OkStatus();
}
absl::Status WriteChildren(Db& db, const v1::Gateway& gateway);
absl::Status WriteChildren(Db& db, const v1::Api& api);
absl::Status WriteChildren(Db& db, const v1::Product& product);

// The resource with this key, its children included; NOT_FOUND naming it if there is none.
template <typename Resource>
absl::StatusOr<Resource> SelectOne(Db& db, std::string_view key) {
  using T = Table<Resource>;
  absl::StatusOr<Statement> select =
      db.Prepare(StrCat(Sql<Resource>::Select(), " WHERE ", T::kKey, " = ?"));
  if (!select.ok()) return select.status();
  select->Bind(1, key);
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(StrCat(T::kKind, " \"", key, "\" not found"));
  Resource resource = ReadRow<Resource>(*select);
  APIM_RETURN_IF_ERROR(ReadChildren(db, resource));
  return resource;
}

}  // namespace apim::store

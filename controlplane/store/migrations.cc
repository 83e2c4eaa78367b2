#include "controlplane/store/migrations.h"

#include "common/str_cat.h"

namespace apim::store {

absl::Status ApplyMigrations(Db& db, std::span<const Migration> migrations) {
  absl::StatusOr<Transaction> tx = Transaction::Begin(db);
  if (!tx.ok()) return tx.status();
  absl::Status created = db.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
  if (!created.ok()) return created;

  absl::StatusOr<Statement> newest = db.Prepare("SELECT MAX(version) FROM schema_migrations");
  if (!newest.ok()) return newest.status();
  if (absl::StatusOr<bool> row = newest->Step(); !row.ok()) return row.status();
  const int64_t current = newest->ColumnInt(0);
  const int64_t known = migrations.empty() ? 0 : migrations.back().version;
  if (current > known) {
    return absl::FailedPreconditionError(StrCat("database schema version ", current,
                                                " is newer than this binary's ", known,
                                                "; run a newer apim-controlplane"));
  }

  for (const Migration& migration : migrations) {
    if (migration.version <= current) continue;
    if (absl::Status applied = db.Exec(migration.sql); !applied.ok()) {
      return absl::Status(applied.code(),
                          StrCat("migration ", migration.name, ": ", applied.message()));
    }
    absl::StatusOr<Statement> record = db.Prepare(
        "INSERT INTO schema_migrations (version, name, applied_at) "
        "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))");
    if (!record.ok()) return record.status();
    record->Bind(1, int64_t{migration.version}).Bind(2, migration.name);
    if (absl::Status recorded = record->Run(); !recorded.ok()) return recorded;
  }
  return tx->Commit();
}

}  // namespace apim::store

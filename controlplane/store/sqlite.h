#pragma once
// Thin RAII over the SQLite C API: one Db per file, prepared Statements with bind/step/column,
// and a Transaction that rolls back unless committed. Errors are absl::Status values.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace apim::store {

class Statement;

// An open database file with the pragmas the store relies on: WAL journal, synchronous=FULL,
// foreign keys enforced, and a busy timeout so a second process waits instead of failing.
class Db {
 public:
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows (schema scripts, pragmas).
  absl::Status Exec(std::string_view sql);
  absl::StatusOr<Statement> Prepare(std::string_view sql);
  sqlite3* handle() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// A prepared statement. Bind indexes start at 1 and column indexes at 0, as in SQLite.
class Statement {
 public:
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::optional<int64_t> value);
  Statement& BindNull(int index);

  // Advances to the next row: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  std::string ColumnText(int index);
  int64_t ColumnInt(int index);
  std::optional<int64_t> ColumnOptionalInt(int index);
  bool ColumnIsNull(int index);

 private:
  friend class Db;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  // The first bind error is remembered and reported by Step/Run, so binds can be chained.
  int bind_error_ = SQLITE_OK;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless Commit() succeeded. IMMEDIATE
// takes the write lock up front so a read-check-write sequence cannot be interleaved.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Db& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
};

// Maps a SQLite result code to a status: constraint violations and busy databases get the codes
// a caller can act on; everything else is INTERNAL.
absl::Status SqliteError(sqlite3* db, int rc, std::string_view context);

}  // namespace apim::store

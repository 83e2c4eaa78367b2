#include "controlplane/store/sqlite.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/return_if_error.h"
#include "common/str_cat.h"

namespace apim::store {

absl::Status SqliteError(sqlite3* db, int rc, std::string_view context) {
  std::string message = StrCat(context, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

namespace {

// The database holds token hashes and settings that are nobody else's business: it is created
// readable by its owner only, and a file (or its WAL) that others can read is tightened.
absl::Status KeepPrivate(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.starts_with("file:")) return absl::OkStatus();
  const int created = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (created >= 0) {
    ::close(created);
    return absl::OkStatus();
  }
  if (errno != EEXIST) {
    return absl::UnavailableError(StrCat("create ", path, ": ", std::strerror(errno)));
  }
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat status {};
    if (::stat(file.c_str(), &status) != 0 || (status.st_mode & 077) == 0) continue;
    if (::chmod(file.c_str(), status.st_mode & 0700) != 0) {
      return absl::PermissionDeniedError(StrCat(
          file, " can be read by others and cannot be made private: ", std::strerror(errno)));
    }
    spdlog::warn("{} could be read by others (mode {:o}); now by its owner only ({:o})", file,
                 status.st_mode & 0777, status.st_mode & 0700);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  APIM_RETURN_IF_ERROR(KeepPrivate(path));
  sqlite3* handle = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &handle,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status error = SqliteError(handle, rc, StrCat("open ", path));
    sqlite3_close(handle);
    return error;
  }
  sqlite3_extended_result_codes(handle, 1);
  std::unique_ptr<Db> db(new Db(handle));
  sqlite3_busy_timeout(handle, 5000);
  absl::Status pragmas =
      db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  if (!pragmas.ok()) return pragmas;
  return db;
}

Db::~Db() { sqlite3_close_v2(db_); }

absl::Status Db::Exec(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    return SqliteError(nullptr, rc, message);
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, StrCat("prepare ", sql));
  return Statement(db_, stmt);
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, std::string_view value) {
  int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                             SQLITE_TRANSIENT);
  if (bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, std::optional<int64_t> value) {
  return value ? Bind(index, *value) : BindNull(index);
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) return SqliteError(db_, bind_error_, "bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = Step();
  return row.ok() ? absl::OkStatus() : row.status();
}

std::string Statement::ColumnText(int index) {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  return text ? std::string(reinterpret_cast<const char*>(text),
                            static_cast<size_t>(sqlite3_column_bytes(stmt_, index)))
              : std::string();
}

int64_t Statement::ColumnInt(int index) { return sqlite3_column_int64(stmt_, index); }

std::optional<int64_t> Statement::ColumnOptionalInt(int index) {
  if (ColumnIsNull(index)) return std::nullopt;
  return ColumnInt(index);
}

bool Statement::ColumnIsNull(int index) { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }

absl::StatusOr<Transaction> Transaction::Begin(Db& db) {
  absl::Status begun = db.Exec("BEGIN IMMEDIATE");
  if (!begun.ok()) return begun;
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_) (void)db_->Exec("ROLLBACK");
}

absl::Status Transaction::Commit() {
  absl::Status committed = db_->Exec("COMMIT");
  if (committed.ok()) db_ = nullptr;
  return committed;
}

}  // namespace apim::store

#pragma once
// Schema migrations: numbered SQL files from migrations/, embedded in the binary at build time.
// Pending ones are applied at start, all in one transaction, and recorded in schema_migrations.

#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "controlplane/store/sqlite.h"

namespace apim::store {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// The migrations compiled into this binary, in version order.
std::span<const Migration> EmbeddedMigrations();

// Applies every migration newer than the database's version. Refuses a database that has a
// migration this binary does not know (it was written by a newer release).
absl::Status ApplyMigrations(Db& db, std::span<const Migration> migrations);

}  // namespace apim::store

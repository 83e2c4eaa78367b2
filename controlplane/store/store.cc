#include "controlplane/store/store.h"

#include <type_traits>

#include "common/return_if_error.h"
#include "common/str_cat.h"
#include "controlplane/store/integrity.h"
#include "controlplane/store/migrations.h"
#include "controlplane/store/resource_tables.h"
#include "controlplane/store/rows.h"

// Opening the store, the generic CRUD of every resource (one template, instantiated per resource
// below) and the store revision. The checks between resources are in integrity.cc, snapshot
// building in snapshot.cc, gateway tokens and control-plane settings in tokens_and_settings.cc.
namespace apim::store {
namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;

absl::Status CheckEtag(std::string_view kind, std::string_view key, std::string_view expected,
                       std::string_view actual) {
  if (expected.empty() || expected == actual) return absl::OkStatus();
  return absl::AbortedError(StrCat(kind, " \"", key, "\" has etag \"", actual, "\", not \"",
                                   expected, "\": it changed since it was read; read it again"));
}

// Writes a resource (insert or update), then checks the invariants that span tables.
template <typename Resource>
absl::StatusOr<Resource> WriteRow(Db& db, Resource resource, bool insert) {
  using T = Table<Resource>;
  APIM_RETURN_IF_ERROR(CheckReferences(db, resource));
  absl::StatusOr<int64_t> revision = BumpRevision(db);
  if (!revision.ok()) return revision.status();
  const int64_t now = NowMs();
  const int n = static_cast<int>(T::kColumns.size());
  if (insert) {
    absl::StatusOr<Statement> write = db.Prepare(Sql<Resource>::Insert());
    if (!write.ok()) return write.status();
    write->Bind(1, T::Key(resource));
    T::Bind(*write, 2, resource);
    write->Bind(n + 2, *revision).Bind(n + 3, now).Bind(n + 4, now);
    APIM_RETURN_IF_ERROR(write->Run());
  } else {
    absl::StatusOr<Statement> write = db.Prepare(Sql<Resource>::Update());
    if (!write.ok()) return write.status();
    T::Bind(*write, 1, resource);
    write->Bind(n + 1, *revision).Bind(n + 2, now).Bind(n + 3, T::Key(resource));
    APIM_RETURN_IF_ERROR(write->Run());
  }
  APIM_RETURN_IF_ERROR(WriteChildren(db, resource));
  APIM_RETURN_IF_ERROR(CheckSseRulesAfterWrite<Resource>(db));
  return SelectOne<Resource>(db, T::Key(resource));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path);
  if (!db.ok()) return db.status();
  APIM_RETURN_IF_ERROR(ApplyMigrations(**db, EmbeddedMigrations()));
  return std::unique_ptr<Store>(new Store(std::move(*db)));
}

template <typename Resource>
absl::StatusOr<Resource> Store::Create(const Resource& resource) {
  using T = Table<Resource>;
  std::lock_guard lock(mu_);
  absl::StatusOr<Transaction> tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.status();
  absl::StatusOr<Resource> existing = SelectOne<Resource>(*db_, T::Key(resource));
  if (existing.ok()) {
    return absl::AlreadyExistsError(StrCat(T::kKind, " \"", T::Key(resource), "\" already exists"));
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  Resource row = resource;
  if constexpr (std::is_same_v<Resource, v1::Tier>) row.set_built_in(false);
  absl::StatusOr<Resource> written = WriteRow(*db_, std::move(row), /*insert=*/true);
  if (!written.ok()) return written.status();
  APIM_RETURN_IF_ERROR(tx->Commit());
  Committed();
  return written;
}

template <typename Resource>
absl::StatusOr<Resource> Store::Get(std::string_view key) {
  std::lock_guard lock(mu_);
  return SelectOne<Resource>(*db_, key);
}

template <typename Resource>
absl::StatusOr<ListResult<Resource>> Store::List(const ListOptions& options) {
  using T = Table<Resource>;
  if (options.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        StrCat("page_size: must be at most ", kMaxPageSize, " (got ", options.page_size, ")"));
  }
  const uint32_t page_size = options.page_size == 0 ? kDefaultPageSize : options.page_size;
  std::lock_guard lock(mu_);
  absl::StatusOr<Statement> select = db_->Prepare(
      StrCat(Sql<Resource>::Select(), " WHERE ", T::kKey, " > ? ORDER BY ", T::kKey, " LIMIT ?"));
  if (!select.ok()) return select.status();
  select->Bind(1, options.page_token).Bind(2, int64_t{page_size} + 1);
  ListResult<Resource> result;
  while (true) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (result.items.size() == page_size) {
      result.next_page_token = T::Key(result.items.back());
      break;
    }
    result.items.push_back(ReadRow<Resource>(*select));
  }
  for (Resource& resource : result.items) APIM_RETURN_IF_ERROR(ReadChildren(*db_, resource));
  return result;
}

template <typename Resource>
absl::StatusOr<Resource> Store::Update(std::string_view key, std::string_view expected_etag,
                                       const std::function<absl::Status(Resource&)>& change) {
  using T = Table<Resource>;
  std::lock_guard lock(mu_);
  absl::StatusOr<Transaction> tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.status();
  absl::StatusOr<Resource> current = SelectOne<Resource>(*db_, key);
  if (!current.ok()) return current.status();
  APIM_RETURN_IF_ERROR(CheckEtag(T::kKind, key, expected_etag, current->etag()));
  Resource changed = *current;
  APIM_RETURN_IF_ERROR(change(changed));
  // The key and output-only fields are the store's, whatever `change` did.
  T::SetKey(changed, std::string(key));
  if constexpr (std::is_same_v<Resource, v1::Tier>) changed.set_built_in(current->built_in());
  absl::StatusOr<Resource> written = WriteRow(*db_, std::move(changed), /*insert=*/false);
  if (!written.ok()) return written.status();
  APIM_RETURN_IF_ERROR(tx->Commit());
  Committed();
  return written;
}

template <typename Resource>
absl::Status Store::Delete(std::string_view key, std::string_view expected_etag) {
  using T = Table<Resource>;
  std::lock_guard lock(mu_);
  absl::StatusOr<Transaction> tx = Transaction::Begin(*db_);
  if (!tx.ok()) return tx.status();
  absl::StatusOr<Resource> current = SelectOne<Resource>(*db_, key);
  if (!current.ok()) return current.status();
  APIM_RETURN_IF_ERROR(CheckEtag(T::kKind, key, expected_etag, current->etag()));
  APIM_RETURN_IF_ERROR(CheckDeletable(*db_, *current));
  absl::StatusOr<Statement> remove =
      db_->Prepare(StrCat("DELETE FROM ", T::kTable, " WHERE ", T::kKey, " = ?"));
  if (!remove.ok()) return remove.status();
  APIM_RETURN_IF_ERROR(remove->Bind(1, key).Run());
  if (absl::StatusOr<int64_t> revision = BumpRevision(*db_); !revision.ok()) {
    return revision.status();
  }
  APIM_RETURN_IF_ERROR(tx->Commit());
  Committed();
  return absl::OkStatus();
}

void Store::SetCommitListener(std::function<void()> listener) {
  std::lock_guard lock(mu_);
  commit_listener_ = std::move(listener);
}

void Store::Committed() {
  if (commit_listener_) commit_listener_();
}

absl::StatusOr<uint64_t> Store::Revision() {
  std::lock_guard lock(mu_);
  absl::StatusOr<Statement> select = db_->Prepare("SELECT revision FROM store_revision");
  if (!select.ok()) return select.status();
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  return static_cast<uint64_t>(select->ColumnInt(0));
}

#define APIM_INSTANTIATE_STORE(Resource)                                                          \
  template absl::StatusOr<Resource> Store::Create(const Resource&);                               \
  template absl::StatusOr<Resource> Store::Get(std::string_view);                                 \
  template absl::StatusOr<ListResult<Resource>> Store::List(const ListOptions&);                  \
  template absl::StatusOr<Resource> Store::Update(std::string_view, std::string_view,             \
                                                  const std::function<absl::Status(Resource&)>&); \
  template absl::Status Store::Delete<Resource>(std::string_view, std::string_view);

APIM_INSTANTIATE_STORE(v1::Tier)
APIM_INSTANTIATE_STORE(v1::Certificate)
APIM_INSTANTIATE_STORE(v1::Gateway)
APIM_INSTANTIATE_STORE(v1::Api)
APIM_INSTANTIATE_STORE(v1::DiagnosticSetting)
APIM_INSTANTIATE_STORE(v1::CacheSetting)
APIM_INSTANTIATE_STORE(v1::Policy)
APIM_INSTANTIATE_STORE(v1::Product)
APIM_INSTANTIATE_STORE(v1::Subscription)

}  // namespace apim::store

#include "controlplane/store/store.h"

#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <set>
#include <string>

#include "common/policy.h"
#include "common/str_cat.h"
#include "controlplane/store/migrations.h"
#include "controlplane/store/resource_tables.h"

namespace apim::store {
namespace {

using google::protobuf::util::TimeUtil;

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;

// Returns early from the enclosing function with the status of a failed expression.
#define APIM_RETURN_IF_ERROR(expr)                     \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs a query and collects its first column as text.
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

std::string Quoted(const std::vector<std::string>& names) { return StrJoin(names, ", ", "\""); }

absl::StatusOr<int64_t> BumpRevision(Db& db) {
  absl::StatusOr<Statement> bump =
      db.Prepare("UPDATE store_revision SET revision = revision + 1 RETURNING revision");
  if (!bump.ok()) return bump.status();
  absl::StatusOr<bool> row = bump->Step();
  if (!row.ok()) return row.status();
  return bump->ColumnInt(0);
}

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

// Rows owned by a resource but stored in other tables: an API's gateways.
template <typename Resource>
absl::Status ReadChildren(Db&, Resource&) {
  return absl::OkStatus();
}
template <>
absl::Status ReadChildren(Db& db, v1::Api& api) {
  absl::StatusOr<std::vector<std::string>> gateways = QueryNames(
      db, "SELECT gateway FROM api_gateways WHERE api = ? ORDER BY position", api.name());
  if (!gateways.ok()) return gateways.status();
  api.mutable_gateways()->Assign(gateways->begin(), gateways->end());
  return absl::OkStatus();
}

template <>
absl::Status ReadChildren(Db& db, v1::Product& product) {
  absl::StatusOr<std::vector<std::string>> apis = QueryNames(
      db, "SELECT api FROM product_apis WHERE product = ? ORDER BY position", product.name());
  if (!apis.ok()) return apis.status();
  product.mutable_apis()->Assign(apis->begin(), apis->end());
  return absl::OkStatus();
}

template <typename Resource>
absl::Status WriteChildren(Db&, const Resource&) {
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
template <>
absl::Status WriteChildren(Db& db, const v1::Api& api) {
  return ReplaceLinks(db, "api_gateways", "api", "gateway", api.name(), api.gateways());
}
template <>
absl::Status WriteChildren(Db& db, const v1::Product& product) {
  return ReplaceLinks(db, "product_apis", "product", "api", product.name(), product.apis());
}

absl::Status RequireExists(Db& db, std::string_view table, std::string_view kind,
                           std::string_view field, std::string_view name) {
  absl::StatusOr<std::vector<std::string>> found =
      QueryNames(db, StrCat("SELECT name FROM ", table, " WHERE name = ?"), name);
  if (!found.ok()) return found.status();
  if (found->empty()) {
    return absl::NotFoundError(StrCat(field, ": ", kind, " \"", name, "\" not found"));
  }
  return absl::OkStatus();
}

// References a resource makes to others must resolve before it is written, so the error names
// the field rather than a foreign-key constraint.
template <typename Resource>
absl::Status CheckReferences(Db& db, const Resource& resource) {
  std::string_view api = apim::ApiOfScope(Table<Resource>::Key(resource));
  if (api.empty()) return absl::OkStatus();
  return RequireExists(db, "apis", "api",
                       StrCat(Table<Resource>::kKind == "policy" ? "policy" : "setting", ".scope"),
                       api);
}
template <>
absl::Status CheckReferences(Db&, const v1::Tier&) {
  return absl::OkStatus();
}
template <>
absl::Status CheckReferences(Db& db, const v1::Product& product) {
  for (int i = 0; i < product.apis_size(); ++i) {
    APIM_RETURN_IF_ERROR(
        RequireExists(db, "apis", "api", StrCat("product.apis[", i, "]"), product.apis(i)));
  }
  return absl::OkStatus();
}
template <>
absl::Status CheckReferences(Db& db, const v1::Subscription& subscription) {
  if (auto api = ScopeTarget(subscription.scope(), "api:"); !api.empty()) {
    return RequireExists(db, "apis", "api", "subscription.scope", api);
  }
  if (auto product = ScopeTarget(subscription.scope(), "product:"); !product.empty()) {
    return RequireExists(db, "products", "product", "subscription.scope", product);
  }
  return absl::OkStatus();
}
template <>
absl::Status CheckReferences(Db& db, const v1::Gateway& gateway) {
  return RequireExists(db, "tiers", "tier", "gateway.tier", gateway.tier());
}
template <>
absl::Status CheckReferences(Db& db, const v1::Api& api) {
  for (int i = 0; i < api.gateways_size(); ++i) {
    APIM_RETURN_IF_ERROR(
        RequireExists(db, "gateways", "gateway", StrCat("api.gateways[", i, "]"), api.gateways(i)));
  }
  absl::StatusOr<Statement> clash =
      db.Prepare("SELECT name FROM apis WHERE host = ? AND path_prefix = ? AND name <> ?");
  if (!clash.ok()) return clash.status();
  clash->Bind(1, api.host()).Bind(2, api.path_prefix()).Bind(3, api.name());
  absl::StatusOr<bool> row = clash->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    return absl::AlreadyExistsError(
        StrCat("api.path_prefix: \"", api.path_prefix(), "\"",
               api.host().empty() ? "" : StrCat(" on host \"", api.host(), "\""),
               " is already served by api \"", clash->ColumnText(0), "\""));
  }
  return absl::OkStatus();
}

// FAILED_PRECONDITION naming the users `users_sql` finds for `name`; OK when there are none.
absl::Status RefuseIfUsed(Db& db, std::string_view users_sql, std::string_view name,
                          std::string_view what, std::string_view remedy) {
  absl::StatusOr<std::vector<std::string>> users = QueryNames(db, users_sql, name);
  if (!users.ok()) return users.status();
  if (users->empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(StrCat(what, Quoted(*users), remedy));
}

// Resources still referenced by others cannot be deleted.
template <typename Resource>
absl::Status CheckDeletable(Db&, const Resource&) {
  return absl::OkStatus();
}
template <>
absl::Status CheckDeletable(Db& db, const v1::Tier& tier) {
  if (tier.built_in()) {
    return absl::FailedPreconditionError(
        StrCat("tier \"", tier.name(), "\" is built in and cannot be deleted"));
  }
  return RefuseIfUsed(db, "SELECT name FROM gateways WHERE tier = ? ORDER BY name", tier.name(),
                      StrCat("tier \"", tier.name(), "\" is used by gateways "),
                      "; move them to another tier first");
}
template <>
absl::Status CheckDeletable(Db& db, const v1::Gateway& gateway) {
  return RefuseIfUsed(db, "SELECT api FROM api_gateways WHERE gateway = ? ORDER BY api",
                      gateway.name(), StrCat("gateway \"", gateway.name(), "\" serves apis "),
                      "; remove it from their gateways first");
}

// The one rule that spans three tables: an API declared SSE may only be served by gateways whose
// tier allows long-lived connections. Checked after every write that could break it, inside the
// write's transaction, so whichever resource changed is refused and nothing is written.
absl::Status CheckSseApisHaveLongLivedTiers(Db& db, std::string_view field) {
  absl::StatusOr<Statement> violation = db.Prepare(
      "SELECT a.name, g.name, t.name FROM apis a "
      "JOIN api_gateways ag ON ag.api = a.name "
      "JOIN gateways g ON g.name = ag.gateway "
      "JOIN tiers t ON t.name = g.tier "
      "WHERE a.sse = 1 AND t.long_lived_connections = 0 ORDER BY a.name, g.name LIMIT 1");
  if (!violation.ok()) return violation.status();
  absl::StatusOr<bool> row = violation->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::OkStatus();
  const std::string api = violation->ColumnText(0);
  const std::string gateway = violation->ColumnText(1);
  const std::string tier = violation->ColumnText(2);
  absl::StatusOr<std::vector<std::string>> capable =
      QueryNames(db, "SELECT name FROM tiers WHERE long_lived_connections = 1 ORDER BY name", "");
  if (!capable.ok()) return capable.status();
  return absl::FailedPreconditionError(StrCat(
      field, ": api \"", api, "\" streams server-sent events, but gateway \"", gateway,
      "\" is on tier \"", tier,
      "\", which does not allow long-lived connections; tiers that do: ", StrJoin(*capable, ", ")));
}

// The guardrails of SSE APIs (DESIGN.md): nothing may buffer, cache or log the body of an API
// declared SSE. Checked after every write to an API or to one of its settings or policies, in the
// write's transaction, so the write that would break a stream is the one refused.
absl::Status CheckSseGuardrails(Db& db, std::string_view field) {
  absl::StatusOr<Statement> violation = db.Prepare(
      "SELECT name, 'forward-request buffer-response=\"true\" would hold its events until the "
      "response ends' FROM apis WHERE sse = 1 AND buffer_response = 1 "
      "UNION ALL SELECT c.api, 'response caching is enabled for it: cached responses would be "
      "replayed instead of streamed' FROM cache_settings c JOIN apis a ON a.name = c.api "
      "WHERE a.sse = 1 AND c.enabled = 1 "
      "UNION ALL SELECT d.api, 'body logging is enabled for it: bodies would be held to be "
      "logged, delaying events' FROM diagnostic_settings d JOIN apis a ON a.name = d.api "
      "WHERE a.sse = 1 AND (d.request_body_bytes > 0 OR d.response_body_bytes > 0) LIMIT 1");
  if (!violation.ok()) return violation.status();
  absl::StatusOr<bool> row = violation->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    return absl::FailedPreconditionError(StrCat(field, ": api \"", violation->ColumnText(0),
                                                "\" streams server-sent events, and ",
                                                violation->ColumnText(1)));
  }
  absl::StatusOr<Statement> policies = db.Prepare(
      "SELECT p.api, p.scope, p.xml FROM policies p JOIN apis a ON a.name = p.api "
      "WHERE a.sse = 1 ORDER BY p.scope");
  if (!policies.ok()) return policies.status();
  while (true) {
    absl::StatusOr<bool> next = policies->Step();
    if (!next.ok()) return next.status();
    if (!*next) return absl::OkStatus();
    absl::StatusOr<policy::Document> document =
        policy::Parse(policies->ColumnText(2), Rules::kServe);
    if (!document.ok()) continue;  // Stored documents were validated; nothing to enforce.
    std::vector<std::string> reasons = policy::SseViolations(*document);
    if (!reasons.empty()) {
      return absl::FailedPreconditionError(
          StrCat(field, ": api \"", policies->ColumnText(0),
                 "\" streams server-sent events, and its policy at scope \"",
                 policies->ColumnText(1), "\" would break the stream: ", StrJoin(reasons, "; ")));
    }
  }
}

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
  if (!T::kSseField.empty()) APIM_RETURN_IF_ERROR(CheckSseApisHaveLongLivedTiers(db, T::kSseField));
  if (!T::kGuardrailField.empty()) APIM_RETURN_IF_ERROR(CheckSseGuardrails(db, T::kGuardrailField));
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

absl::StatusOr<v1::Snapshot> Store::BuildSnapshot(std::string_view gateway_name) {
  std::lock_guard lock(mu_);
  // A read transaction: every row comes from the same revision.
  APIM_RETURN_IF_ERROR(db_->Exec("BEGIN"));
  struct Rollback {
    Db& db;
    ~Rollback() { (void)db.Exec("ROLLBACK"); }
  } end_read{*db_};

  v1::Snapshot snapshot;
  absl::StatusOr<Statement> revision = db_->Prepare("SELECT revision FROM store_revision");
  if (!revision.ok()) return revision.status();
  if (absl::StatusOr<bool> row = revision->Step(); !row.ok()) return row.status();
  snapshot.set_version(static_cast<uint64_t>(revision->ColumnInt(0)));
  snapshot.set_gateway(std::string(gateway_name));

  absl::StatusOr<v1::Gateway> gateway = SelectOne<v1::Gateway>(*db_, gateway_name);
  if (!gateway.ok()) return gateway.status();
  absl::StatusOr<v1::Tier> tier = SelectOne<v1::Tier>(*db_, gateway->tier());
  if (!tier.ok()) return tier.status();
  *snapshot.mutable_tier() = *std::move(tier);

  absl::StatusOr<std::vector<std::string>> api_names =
      QueryNames(*db_, "SELECT api FROM api_gateways WHERE gateway = ? ORDER BY api", gateway_name);
  if (!api_names.ok()) return api_names.status();
  std::set<std::string, std::less<>> served(api_names->begin(), api_names->end());
  for (const std::string& name : *api_names) {
    absl::StatusOr<v1::Api> api = SelectOne<v1::Api>(*db_, name);
    if (!api.ok()) return api.status();
    *snapshot.add_apis() = *std::move(api);
  }
  // Settings and policies: the global ones and those of the APIs this gateway serves.
  auto applies = [&](const std::string& scope) {
    std::string_view api = apim::ApiOfScope(scope);
    return api.empty() || served.contains(api);
  };
  auto collect =
      [&]<typename Resource>(google::protobuf::RepeatedPtrField<Resource>& out) -> absl::Status {
    absl::StatusOr<Statement> select =
        db_->Prepare(StrCat(Sql<Resource>::Select(), " ORDER BY ", Table<Resource>::kKey));
    if (!select.ok()) return select.status();
    while (true) {
      absl::StatusOr<bool> row = select->Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      Resource resource = ReadRow<Resource>(*select);
      if (applies(Table<Resource>::Key(resource))) *out.Add() = std::move(resource);
    }
  };
  APIM_RETURN_IF_ERROR(collect(*snapshot.mutable_diagnostics()));
  APIM_RETURN_IF_ERROR(collect(*snapshot.mutable_caches()));
  APIM_RETURN_IF_ERROR(collect(*snapshot.mutable_policies()));

  // Subscriptions, resolved to the APIs of this gateway they cover.
  absl::StatusOr<Statement> subscriptions =
      db_->Prepare(StrCat(Sql<v1::Subscription>::Select(), " ORDER BY name"));
  if (!subscriptions.ok()) return subscriptions.status();
  while (true) {
    absl::StatusOr<bool> row = subscriptions->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    v1::Subscription subscription = ReadRow<v1::Subscription>(*subscriptions);
    if (subscription.suspended()) continue;
    v1::SubscriptionGrant grant;
    grant.set_name(subscription.name());
    grant.set_max_concurrent_streams(subscription.max_concurrent_streams());
    grant.add_key_sha256(subscription.primary_key_sha256());
    grant.add_key_sha256(subscription.secondary_key_sha256());
    if (subscription.scope() == "all") {
      for (const std::string& api : served) grant.add_apis(api);
    } else if (auto api = ScopeTarget(subscription.scope(), "api:"); !api.empty()) {
      if (served.contains(api)) grant.add_apis(std::string(api));
    } else if (auto product = ScopeTarget(subscription.scope(), "product:"); !product.empty()) {
      absl::StatusOr<std::vector<std::string>> apis =
          QueryNames(*db_, "SELECT api FROM product_apis WHERE product = ? ORDER BY api", product);
      if (!apis.ok()) return apis.status();
      for (const std::string& name : *apis) {
        if (served.contains(name)) grant.add_apis(name);
      }
    }
    if (grant.apis_size() > 0) *snapshot.add_subscriptions() = std::move(grant);
  }
  return snapshot;
}

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

absl::StatusOr<uint64_t> Store::Revision() {
  std::lock_guard lock(mu_);
  absl::StatusOr<Statement> select = db_->Prepare("SELECT revision FROM store_revision");
  if (!select.ok()) return select.status();
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  return static_cast<uint64_t>(select->ColumnInt(0));
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

#define APIM_INSTANTIATE_STORE(Resource)                                                          \
  template absl::StatusOr<Resource> Store::Create(const Resource&);                               \
  template absl::StatusOr<Resource> Store::Get(std::string_view);                                 \
  template absl::StatusOr<ListResult<Resource>> Store::List(const ListOptions&);                  \
  template absl::StatusOr<Resource> Store::Update(std::string_view, std::string_view,             \
                                                  const std::function<absl::Status(Resource&)>&); \
  template absl::Status Store::Delete<Resource>(std::string_view, std::string_view);

APIM_INSTANTIATE_STORE(v1::Tier)
APIM_INSTANTIATE_STORE(v1::Gateway)
APIM_INSTANTIATE_STORE(v1::Api)
APIM_INSTANTIATE_STORE(v1::DiagnosticSetting)
APIM_INSTANTIATE_STORE(v1::CacheSetting)
APIM_INSTANTIATE_STORE(v1::Policy)
APIM_INSTANTIATE_STORE(v1::Product)
APIM_INSTANTIATE_STORE(v1::Subscription)

}  // namespace apim::store

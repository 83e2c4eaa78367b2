#include "controlplane/store/integrity.h"

#include <string>
#include <vector>

#include "common/policy.h"
#include "common/scope.h"
#include "common/str_cat.h"
#include "controlplane/store/rows.h"

namespace apim::store {
namespace {

std::string Quoted(const std::vector<std::string>& names) { return StrJoin(names, ", ", "\""); }

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

// A setting or policy scoped to an API (or one of its operations) needs the API.
absl::Status CheckScope(Db& db, std::string_view field, std::string_view scope) {
  std::string_view api = apim::ApiOfScope(scope);
  if (api.empty()) return absl::OkStatus();
  return RequireExists(db, "apis", "api", field, api);
}

// FAILED_PRECONDITION naming the users `users_sql` finds for `name`; OK when there are none.
absl::Status RefuseIfUsed(Db& db, std::string_view users_sql, std::string_view name,
                          std::string_view what, std::string_view remedy) {
  absl::StatusOr<std::vector<std::string>> users = QueryNames(db, users_sql, name);
  if (!users.ok()) return users.status();
  if (users->empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(StrCat(what, Quoted(*users), remedy));
}

}  // namespace

absl::Status CheckReferences(Db&, const v1::Tier&) { return absl::OkStatus(); }

absl::Status CheckReferences(Db&, const v1::Certificate&) { return absl::OkStatus(); }

absl::Status CheckReferences(Db& db, const v1::Gateway& gateway) {
  APIM_RETURN_IF_ERROR(RequireExists(db, "tiers", "tier", "gateway.tier", gateway.tier()));
  for (int i = 0; i < gateway.hostnames_size(); ++i) {
    APIM_RETURN_IF_ERROR(RequireExists(db, "certificates", "certificate",
                                       StrCat("gateway.hostnames[", i, "].certificate"),
                                       gateway.hostnames(i).certificate()));
  }
  return absl::OkStatus();
}

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

absl::Status CheckReferences(Db& db, const v1::DiagnosticSetting& setting) {
  return CheckScope(db, "setting.scope", setting.scope());
}

absl::Status CheckReferences(Db& db, const v1::CacheSetting& setting) {
  return CheckScope(db, "setting.scope", setting.scope());
}

absl::Status CheckReferences(Db& db, const v1::Policy& policy) {
  return CheckScope(db, "policy.scope", policy.scope());
}

absl::Status CheckReferences(Db& db, const v1::Product& product) {
  for (int i = 0; i < product.apis_size(); ++i) {
    APIM_RETURN_IF_ERROR(
        RequireExists(db, "apis", "api", StrCat("product.apis[", i, "]"), product.apis(i)));
  }
  return absl::OkStatus();
}

absl::Status CheckReferences(Db& db, const v1::Subscription& subscription) {
  if (auto api = ScopeTarget(subscription.scope(), "api:"); !api.empty()) {
    return RequireExists(db, "apis", "api", "subscription.scope", api);
  }
  if (auto product = ScopeTarget(subscription.scope(), "product:"); !product.empty()) {
    return RequireExists(db, "products", "product", "subscription.scope", product);
  }
  return absl::OkStatus();
}

absl::Status CheckDeletable(Db& db, const v1::Tier& tier) {
  if (tier.built_in()) {
    return absl::FailedPreconditionError(
        StrCat("tier \"", tier.name(), "\" is built in and cannot be deleted"));
  }
  return RefuseIfUsed(db, "SELECT name FROM gateways WHERE tier = ? ORDER BY name", tier.name(),
                      StrCat("tier \"", tier.name(), "\" is used by gateways "),
                      "; move them to another tier first");
}

absl::Status CheckDeletable(Db& db, const v1::Gateway& gateway) {
  return RefuseIfUsed(db, "SELECT api FROM api_gateways WHERE gateway = ? ORDER BY api",
                      gateway.name(), StrCat("gateway \"", gateway.name(), "\" serves apis "),
                      "; remove it from their gateways first");
}

absl::Status CheckDeletable(Db& db, const v1::Certificate& certificate) {
  return RefuseIfUsed(
      db, "SELECT DISTINCT gateway FROM gateway_hostnames WHERE certificate = ? ORDER BY gateway",
      certificate.name(), StrCat("certificate \"", certificate.name(), "\" is bound by gateways "),
      "; bind their hostnames to another certificate or remove them first");
}

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

}  // namespace apim::store

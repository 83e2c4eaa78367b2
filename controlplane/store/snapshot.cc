#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/return_if_error.h"
#include "common/scope.h"
#include "common/str_cat.h"
#include "controlplane/store/resource_tables.h"
#include "controlplane/store/rows.h"
#include "controlplane/store/store.h"

namespace apim::store {
namespace {

// One ServedCertificate per certificate the gateway's hostnames are bound to (by name), with its
// hostnames sorted. The default is the binding marked so, else the first hostname alphabetically.
absl::Status AddServedCertificates(Db& db, const v1::Gateway& gateway, v1::Snapshot& snapshot) {
  if (gateway.hostnames().empty()) return absl::OkStatus();
  std::string default_hostname;
  for (const v1::HostnameBinding& binding : gateway.hostnames()) {
    if (binding.is_default()) default_hostname = binding.hostname();
  }
  if (default_hostname.empty()) {
    default_hostname =
        std::min_element(gateway.hostnames().begin(), gateway.hostnames().end(),
                         [](const v1::HostnameBinding& a, const v1::HostnameBinding& b) {
                           return a.hostname() < b.hostname();
                         })
            ->hostname();
  }
  std::map<std::string, std::vector<std::string>> hostnames_by_certificate;
  for (const v1::HostnameBinding& binding : gateway.hostnames()) {
    hostnames_by_certificate[binding.certificate()].push_back(binding.hostname());
  }
  for (auto& [name, hostnames] : hostnames_by_certificate) {
    absl::StatusOr<v1::Certificate> certificate = SelectOne<v1::Certificate>(db, name);
    if (!certificate.ok()) return certificate.status();
    std::sort(hostnames.begin(), hostnames.end());
    v1::ServedCertificate& served = *snapshot.add_certificates();
    served.set_name(name);
    served.mutable_hostnames()->Assign(hostnames.begin(), hostnames.end());
    served.set_is_default(std::binary_search(hostnames.begin(), hostnames.end(), default_hostname));
    served.set_certificate_chain(certificate->certificate_chain());
    served.set_private_key(certificate->private_key());
  }
  return absl::OkStatus();
}

// The gateway's shared state as its workers use it: the password included, and the key prefix
// filled in, so workers of different gateways on one Redis server never share a counter.
void AddSharedState(const v1::Gateway& gateway, v1::Snapshot& snapshot) {
  if (!gateway.has_shared_state()) return;
  v1::SharedState& shared = *snapshot.mutable_shared_state() = gateway.shared_state();
  shared.clear_has_password();
  if (shared.key_prefix().empty()) shared.set_key_prefix(StrCat("apim:", gateway.name(), ":"));
}

}  // namespace

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
  APIM_RETURN_IF_ERROR(AddServedCertificates(*db_, *gateway, snapshot));
  AddSharedState(*gateway, snapshot);

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

}  // namespace apim::store

#pragma once
// The rules between resources, checked inside a write's transaction so that the write which would
// break one is refused and nothing is written. References resolve (the error names the field, not
// a foreign-key constraint); what others still use is not deleted; and an API declared SSE keeps
// its guarantees (DESIGN.md): it is served only on tiers that allow long-lived connections, and
// nothing buffers, caches or logs its body. Internal to the store.

#include <string_view>

#include "absl/status/status.h"
#include "apim/v1/resources.pb.h"
#include "common/return_if_error.h"
#include "controlplane/store/resource_tables.h"
#include "controlplane/store/sqlite.h"

namespace apim::store {

// Before a resource is written: the resources it names exist (and an API's host and path prefix
// are its own).
absl::Status CheckReferences(Db& db, const v1::Tier& tier);
absl::Status CheckReferences(Db& db, const v1::Certificate& certificate);
absl::Status CheckReferences(Db& db, const v1::Gateway& gateway);
absl::Status CheckReferences(Db& db, const v1::Api& api);
absl::Status CheckReferences(Db& db, const v1::DiagnosticSetting& setting);
absl::Status CheckReferences(Db& db, const v1::CacheSetting& setting);
absl::Status CheckReferences(Db& db, const v1::Policy& policy);
absl::Status CheckReferences(Db& db, const v1::Product& product);
absl::Status CheckReferences(Db& db, const v1::Subscription& subscription);

// Before a resource is deleted: a tier gateways use, a gateway that serves APIs, a certificate a
// gateway binds, and a built-in tier are refused, naming what holds them. Anything else may go (the
// template; the overloads are preferred where they match): the schema deletes what hangs off it, an
// API's settings included.
template <typename Resource>
absl::Status CheckDeletable(Db&, const Resource&) {
  return absl::OkStatus();
}
absl::Status CheckDeletable(Db& db, const v1::Tier& tier);
absl::Status CheckDeletable(Db& db, const v1::Gateway& gateway);
absl::Status CheckDeletable(Db& db, const v1::Certificate& certificate);

// The one rule that spans three tables: an API declared SSE may only be served by gateways whose
// tier allows long-lived connections. `field` is the one the error names.
absl::Status CheckSseApisHaveLongLivedTiers(Db& db, std::string_view field);

// Nothing may buffer, cache or log the body of an API declared SSE: its forward-request, its
// cache and diagnostic settings, and its policies. `field` is the one the error names.
absl::Status CheckSseGuardrails(Db& db, std::string_view field);

// After a resource is written (its children too): the SSE rules a write of this kind could break,
// so whichever resource changed is the one refused.
template <typename Resource>
absl::Status CheckSseRulesAfterWrite(Db& db) {
  using T = Table<Resource>;
  if (!T::kSseField.empty()) APIM_RETURN_IF_ERROR(CheckSseApisHaveLongLivedTiers(db, T::kSseField));
  if (!T::kGuardrailField.empty()) APIM_RETURN_IF_ERROR(CheckSseGuardrails(db, T::kGuardrailField));
  return absl::OkStatus();
}

}  // namespace apim::store

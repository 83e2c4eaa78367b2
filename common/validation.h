#pragma once
// Shape rules for resources, checked before anything is written: each failure is an
// INVALID_ARGUMENT whose message starts with the offending field ("api.backend_url: ...").
// Rules that need other resources (references, tiers of SSE APIs) live in the store.

#include "absl/status/status.h"
#include "apim/v1/resources.pb.h"

namespace apim {

absl::Status Validate(const v1::Tier& tier);
absl::Status Validate(const v1::Gateway& gateway);
absl::Status Validate(const v1::Api& api);
absl::Status Validate(const v1::DiagnosticSetting& setting);
absl::Status Validate(const v1::CacheSetting& setting);
absl::Status Validate(const v1::Policy& policy);
absl::Status Validate(const v1::Product& product);
absl::Status Validate(const v1::Subscription& subscription);

// A whole snapshot, as a worker receives it: its tier and every API, plus the rules across them
// that the store enforces (unique names and routes, SSE APIs only on tiers that allow streams).
absl::Status Validate(const v1::Snapshot& snapshot);

}  // namespace apim

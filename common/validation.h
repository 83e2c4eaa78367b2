#pragma once
// Shape rules for resources, checked before anything is written: each failure is an
// INVALID_ARGUMENT whose message starts with the offending field ("api.backend_url: ...").
// Rules that need other resources (references, tiers of SSE APIs) live in the store.
// Rules::kServe leaves out the rules added after documents were first stored (common/rules.h).

#include <string_view>

#include "absl/status/status.h"
#include "apim/v1/resources.pb.h"
#include "common/rules.h"

namespace apim {

absl::Status Validate(const v1::Tier& tier, Rules rules = Rules::kWrite);
absl::Status Validate(const v1::Gateway& gateway, Rules rules = Rules::kWrite);
absl::Status Validate(const v1::Api& api, Rules rules = Rules::kWrite);
absl::Status Validate(const v1::DiagnosticSetting& setting, Rules rules = Rules::kWrite);
absl::Status Validate(const v1::CacheSetting& setting, Rules rules = Rules::kWrite);
absl::Status Validate(const v1::Policy& policy, Rules rules = Rules::kWrite);
absl::Status Validate(const v1::Product& product, Rules rules = Rules::kWrite);
absl::Status Validate(const v1::Subscription& subscription, Rules rules = Rules::kWrite);
// Also refuses a certificate that has expired or is not valid yet (against the clock now).
absl::Status Validate(const v1::Certificate& certificate, Rules rules = Rules::kWrite);

// Where a gateway's workers share their counters (`field` names it in errors:
// "gateway.shared_state", "snapshot.shared_state"). All unset means none and is valid; otherwise
// redis_address is HOST:PORT (a DNS name, an IPv4 address or [IPv6]; port 1-65535),
// ca_certificate parses as PEM certificates and comes with tls, username has no spaces or control
// characters and comes with a password, the password (at most 4096 bytes) has no line breaks or
// NUL bytes, database is at most 65535, key_prefix is at most 128 bytes of printable ASCII
// without spaces.
absl::Status ValidateSharedState(const v1::SharedState& shared_state, std::string_view field);

// A whole snapshot, as a worker receives it (pushed, or from a standalone --config file): its
// tier, APIs, diagnostic and cache settings under Rules::kServe, plus the rules across them that
// the store enforces (unique names and routes, SSE APIs only on tiers that allow streams).
absl::Status Validate(const v1::Snapshot& snapshot);

}  // namespace apim

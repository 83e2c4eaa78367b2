#pragma once
// One reader per policy element, internal to the policy compiler: each checks the element's
// attributes and children and fills the step it compiles to, refusing what APIM would mean
// differently. Where an element may appear is the compiler's business, not theirs.

#include <pugixml.hpp>

#include "absl/status/status.h"
#include "common/policy.h"
#include "common/policy/xml_reading.h"

namespace apim::policy::internal {

absl::Status Read(const Source& source, pugi::xml_node node, Base& out);
absl::Status Read(const Source& source, pugi::xml_node node, SetHeader& out);
absl::Status Read(const Source& source, pugi::xml_node node, CheckHeader& out);
absl::Status Read(const Source& source, pugi::xml_node node, RateLimit& out);
absl::Status Read(const Source& source, pugi::xml_node node, RateLimitByKey& out);
absl::Status Read(const Source& source, pugi::xml_node node, ReturnResponse& out);
absl::Status Read(const Source& source, pugi::xml_node node, ForwardRequest& out);
absl::Status Read(const Source& source, pugi::xml_node node, CacheLookup& out);
absl::Status Read(const Source& source, pugi::xml_node node, CacheStore& out);
absl::Status Read(const Source& source, pugi::xml_node node, ValidateContent& out);
absl::Status Read(const Source& source, pugi::xml_node node, Quota& out);
absl::Status Read(const Source& source, pugi::xml_node node, QuotaByKey& out);

}  // namespace apim::policy::internal

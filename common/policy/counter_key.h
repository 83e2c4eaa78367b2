#pragma once
// The counter-key of rate-limit-by-key and quota-by-key: a literal, or one of the few C#
// expressions the gateway evaluates itself (the client's address, a request header, a query
// parameter). Internal to the policy compiler.

#include <pugixml.hpp>

#include "absl/status/status.h"
#include "common/policy.h"
#include "common/policy/xml_reading.h"

namespace apim::policy::internal {

// Reads node's required counter-key="…"; an expression it does not recognise is refused with the
// list of those it does, rather than counted as a literal.
absl::Status ReadCounterKey(const Source& source, pugi::xml_node node, CounterKey& out);

}  // namespace apim::policy::internal

#pragma once
// Documents stored before a rule became stricter (common/rules.h) are served as before; these say
// which ones break the new rules, for Get and List (as a warning on the resource) and for the
// control plane's start-up log, so operators learn what their next change must fix.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/store/store.h"

namespace apim::controlplane {

// Why `resource` would be refused if it were written now; nullopt if it would not be.
template <typename Resource>
std::optional<std::string> StricterRuleWarning(const Resource& resource);

// One line per stored resource that breaks a newer rule: `api "orders": api.display_name: ...`.
absl::StatusOr<std::vector<std::string>> StoredDocumentsBreakingNewerRules(store::Store& store);

}  // namespace apim::controlplane

#include <algorithm>
#include <variant>

#include "common/policy.h"

namespace apim::policy {

bool Section::has_base() const {
  return std::any_of(steps.begin(), steps.end(),
                     [](const Step& step) { return std::holds_alternative<Base>(step); });
}

Document Merge(const Document& parent, const Document& child) {
  auto merge = [](const Section& above, const Section& own) {
    Section merged;
    for (const Step& step : own.steps) {
      if (std::holds_alternative<Base>(step)) {
        merged.steps.insert(merged.steps.end(), above.steps.begin(), above.steps.end());
      } else {
        merged.steps.push_back(step);
      }
    }
    return merged;
  };
  return Document{merge(parent.inbound, child.inbound), merge(parent.backend, child.backend),
                  merge(parent.outbound, child.outbound), merge(parent.on_error, child.on_error)};
}

}  // namespace apim::policy

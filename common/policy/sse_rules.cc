#include <algorithm>
#include <string>
#include <variant>
#include <vector>

#include "common/policy.h"

namespace apim::policy {

std::vector<std::string> SseViolations(const Document& document) {
  std::vector<std::string> reasons;
  auto add = [&](std::string reason) {
    if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) {
      reasons.push_back(std::move(reason));
    }
  };
  for (const Section* section :
       {&document.inbound, &document.backend, &document.outbound, &document.on_error}) {
    for (const Step& step : section->steps) {
      if (std::holds_alternative<CacheLookup>(step)) {
        add("cache-lookup: responses would be replayed from cache instead of streamed");
      } else if (std::holds_alternative<CacheStore>(step)) {
        add("cache-store: the response would be held until it ends to be stored, so events "
            "would be delayed");
      } else if (std::holds_alternative<ValidateContent>(step)) {
        add("validate-content: buffers the body, so events would be delayed");
      } else if (const auto* forward = std::get_if<ForwardRequest>(&step);
                 forward && forward->buffer_response.value_or(false)) {
        add("forward-request buffer-response=\"true\": events would be buffered");
      }
    }
  }
  return reasons;
}

}  // namespace apim::policy

#pragma once
// Scopes of settings and policies: "global", "api:NAME" or "operation:API/OPERATION".

#include <string_view>

namespace apim {

inline constexpr std::string_view kGlobalScope = "global";
inline constexpr std::string_view kApiScopePrefix = "api:";
inline constexpr std::string_view kOperationScopePrefix = "operation:";

// The API a scope belongs to, or empty for the global scope (and for malformed scopes).
inline std::string_view ApiOfScope(std::string_view scope) {
  if (scope.starts_with(kApiScopePrefix)) return scope.substr(kApiScopePrefix.size());
  if (scope.starts_with(kOperationScopePrefix)) {
    std::string_view rest = scope.substr(kOperationScopePrefix.size());
    return rest.substr(0, rest.find('/'));
  }
  return {};
}

}  // namespace apim

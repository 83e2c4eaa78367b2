#pragma once
// What the gateway checks and rewrites in a request's target before it is routed, forwarded or
// logged: a target that a backend could resolve outside the API's base path is refused, a
// fragment never leaves the gateway, and a subscription key carried in the query is taken out
// (it must reach neither the backend nor a log).

#include <string>
#include <string_view>

namespace apim::dataplane {

// Why `target` is refused (400), or empty when it may be routed. Refused: bytes outside
// printable ASCII (a client must percent-encode them), and a path segment that decodes to "." or
// "..", where "%2f" and "%5c" (any case) and "\" count as separators as well as "/": a backend
// that decodes them would otherwise resolve "/api/..%2fsecret" outside "/api".
std::string_view RefusedTargetReason(std::string_view target);

// `target` without its fragment ("#..."), which is the client's business only.
std::string_view WithoutFragment(std::string_view target);

// The query parameter that may carry a subscription key (APIM's name).
inline constexpr std::string_view kSubscriptionKeyParameter = "subscription-key";

// Takes every subscription-key parameter out of `target` (an origin-form target) and returns the
// value of the first, or empty when there was none.
std::string TakeSubscriptionKey(std::string& target);

// `target` as it may be logged: the value of every subscription-key parameter is replaced.
std::string RedactedTarget(std::string_view target);

}  // namespace apim::dataplane

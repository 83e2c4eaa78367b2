#include "dataplane/exchange/request_target.h"

#include <boost/beast/core/string.hpp>

namespace apim::dataplane {
namespace {

constexpr std::string_view kRedacted = "redacted";

bool IsEncodedSeparator(std::string_view rest) {
  return rest.size() >= 3 && rest[0] == '%' &&
         (boost::beast::iequals(rest.substr(1, 2), "2f") ||
          boost::beast::iequals(rest.substr(1, 2), "5c"));
}

bool IsEncodedDot(std::string_view rest) {
  return rest.size() >= 3 && rest[0] == '%' && boost::beast::iequals(rest.substr(1, 2), "2e");
}

// Calls `visit(name, begin, value_begin, end)` for each parameter of the query in `target`: offsets
// into `target` of the parameter, its value and its end.
template <typename Visit>
void ForEachQueryParameter(std::string_view target, Visit visit) {
  size_t at = target.find('?');
  if (at == std::string_view::npos) return;
  ++at;
  while (at <= target.size()) {
    size_t end = target.find('&', at);
    if (end == std::string_view::npos) end = target.size();
    const std::string_view parameter = target.substr(at, end - at);
    const size_t equals = parameter.find('=');
    const size_t value_begin = equals == std::string_view::npos ? end : at + equals + 1;
    visit(parameter.substr(0, equals), at, value_begin, end);
    at = end + 1;
  }
}

bool IsSubscriptionKey(std::string_view name) {
  return boost::beast::iequals(name, kSubscriptionKeyParameter);
}

}  // namespace

std::string_view RefusedTargetReason(std::string_view target) {
  for (const char c : target) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) {
      return "the request target has bytes that are not printable ASCII; percent-encode them";
    }
  }
  std::string_view path = WithoutFragment(target);
  path = path.substr(0, path.find('?'));
  // Walks the path one segment at a time; a segment counts its dots and anything else.
  size_t dots = 0;
  bool other = false;
  for (size_t i = 0; i <= path.size(); ++i) {
    const std::string_view rest = path.substr(i);
    const bool separator =
        rest.empty() || rest[0] == '/' || rest[0] == '\\' || IsEncodedSeparator(rest);
    if (separator) {
      if (!other && (dots == 1 || dots == 2)) {
        return "the request path has a '.' or '..' segment (counting %2F and %5C as '/')";
      }
      dots = 0;
      other = false;
      if (IsEncodedSeparator(rest)) i += 2;
    } else if (rest[0] == '.') {
      ++dots;
    } else if (IsEncodedDot(rest)) {
      ++dots;
      i += 2;
    } else {
      other = true;
    }
  }
  return {};
}

std::string_view WithoutFragment(std::string_view target) {
  return target.substr(0, target.find('#'));
}

std::string TakeSubscriptionKey(std::string& target) {
  std::string key;
  std::string kept;
  bool found = false;
  ForEachQueryParameter(target,
                        [&](std::string_view name, size_t begin, size_t value_begin, size_t end) {
                          if (IsSubscriptionKey(name)) {
                            if (!found) key = target.substr(value_begin, end - value_begin);
                            found = true;
                            return;
                          }
                          kept.append(kept.empty() ? "" : "&").append(target, begin, end - begin);
                        });
  if (!found) return key;
  target.resize(target.find('?'));
  if (!kept.empty()) target.append("?").append(kept);
  return key;
}

std::string RedactedTarget(std::string_view target) {
  std::string redacted;
  size_t copied = 0;
  ForEachQueryParameter(target, [&](std::string_view name, size_t, size_t begin, size_t end) {
    if (!IsSubscriptionKey(name) || begin == end) return;
    redacted.append(target.substr(copied, begin - copied)).append(kRedacted);
    copied = end;
  });
  redacted.append(target.substr(copied));
  return redacted;
}

}  // namespace apim::dataplane

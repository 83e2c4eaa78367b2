#pragma once
// String building for messages and SQL. Debian's abseil is built with its own string_view type,
// so absl::StrCat does not accept std::string_view; these accept both, and numbers.

#include <concepts>
#include <string>
#include <string_view>

namespace apim {

namespace internal {
inline void AppendPiece(std::string& out, std::string_view piece) { out.append(piece); }
inline void AppendPiece(std::string& out, const char* piece) { out.append(piece); }
inline void AppendPiece(std::string& out, char piece) { out.push_back(piece); }
template <typename Text>
requires requires(const Text& t) {
  { t.data() } -> std::convertible_to<const char*>;
  { t.size() } -> std::convertible_to<size_t>;
}
void AppendPiece(std::string& out, const Text& piece) { out.append(piece.data(), piece.size()); }
template <typename Number>
requires(std::integral<Number> && !std::same_as<Number, char> &&
         !std::same_as<Number, bool>) void AppendPiece(std::string& out, Number piece) {
  out.append(std::to_string(piece));
}
}  // namespace internal

template <typename... Pieces>
std::string StrCat(const Pieces&... pieces) {
  std::string out;
  (internal::AppendPiece(out, pieces), ...);
  return out;
}

// Appends to `out`, as StrCat would build.
template <typename... Pieces>
void StrAppendTo(std::string& out, const Pieces&... pieces) {
  (internal::AppendPiece(out, pieces), ...);
}

// Joins the items of a range, each optionally wrapped: StrJoin(names, ", ", "\"") gives "a", "b".
template <typename Range>
std::string StrJoin(const Range& items, std::string_view separator, std::string_view quote = "") {
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.append(separator);
    first = false;
    internal::AppendPiece(out, quote);
    internal::AppendPiece(out, item);
    internal::AppendPiece(out, quote);
  }
  return out;
}

}  // namespace apim

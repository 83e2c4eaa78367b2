#pragma once
// Reading a policy document's XML, internal to the policy compiler: where errors point (Source
// turns pugixml offsets into line numbers and words every message the same way), the shape of an
// element (its attributes, its children, no stray text), and typed attribute readers that name
// the attribute at fault (an optional attribute that is absent leaves `out` as it was).

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/rules.h"
#include "common/str_cat.h"

namespace apim::policy::internal {

bool IsSpace(char c);
std::string_view Trim(std::string_view text);

// RFC 9110 token, the grammar of a header name.
bool IsToken(std::string_view text);

bool Contains(std::initializer_list<std::string_view> names, std::string_view name);

// "<a>, <b>" for messages.
template <typename Range>
std::string Tags(const Range& names) {
  std::vector<std::string> tags;
  for (std::string_view name : names) tags.push_back(StrCat("<", name, ">"));
  return StrJoin(tags, ", ");
}

// Where errors point: the document's text, to turn pugixml offsets into line numbers.
class Source {
 public:
  Source(std::string_view xml, Rules rules) : xml_(xml), rules_(rules) {}

  Rules rules() const { return rules_; }

  size_t LineAt(ptrdiff_t offset) const;

  absl::Status Error(size_t line, std::string_view element, std::string_view problem) const;
  absl::Status Error(pugi::xml_node node, std::string_view problem) const;
  // An attribute's value, quoted as the user wrote it, followed by what is wrong with it.
  absl::Status Error(pugi::xml_node node, pugi::xml_attribute attribute,
                     std::string_view problem) const;

 private:
  std::string_view xml_;
  Rules rules_;
};

// Refuses `node` when it is text other than whitespace.
absl::Status CheckNoText(const Source& source, pugi::xml_node node);

// Attributes must be among `attributes`, each at most once.
absl::Status CheckAttributes(const Source& source, pugi::xml_node node,
                             std::initializer_list<std::string_view> attributes);

// The attributes of a policy element, and its children: elements among `children`, no text.
absl::Status CheckShape(const Source& source, pugi::xml_node node,
                        std::initializer_list<std::string_view> attributes,
                        std::initializer_list<std::string_view> children);

// The text of an element that holds only text (CDATA included), exactly as written.
absl::Status ReadText(const Source& source, pugi::xml_node node, std::string& out);

// A whole number between min and max; `unit` words the range in the error.
absl::Status ReadNumber(const Source& source, pugi::xml_node node, const char* name, uint64_t min,
                        uint64_t max, std::string_view unit, std::optional<uint64_t>& out);
absl::Status ReadRequiredNumber(const Source& source, pugi::xml_node node, const char* name,
                                uint64_t min, uint64_t max, std::string_view unit, uint64_t& out);

absl::Status ReadBool(const Source& source, pugi::xml_node node, const char* name,
                      std::optional<bool>& out);

// An attribute whose value is one of `choices`; `out` keeps its default when it is absent.
absl::Status ReadChoice(const Source& source, pugi::xml_node node, const char* name,
                        std::initializer_list<std::string_view> choices, std::string& out);

// The required name="…" of an element about one header.
absl::Status ReadHeaderName(const Source& source, pugi::xml_node node, std::string& out);

}  // namespace apim::policy::internal

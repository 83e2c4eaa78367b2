#include "common/policy/xml_reading.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <set>

#include "common/return_if_error.h"

namespace apim::policy::internal {
namespace {

bool IsText(pugi::xml_node node) {
  return node.type() == pugi::node_pcdata || node.type() == pugi::node_cdata;
}

}  // namespace

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool Contains(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

size_t Source::LineAt(ptrdiff_t offset) const {
  size_t end = std::min(static_cast<size_t>(std::max<ptrdiff_t>(offset, 0)), xml_.size());
  // Lines end with LF, CRLF or a lone CR.
  size_t line = 1;
  for (size_t i = 0; i < end; ++i) {
    if (xml_[i] == '\n' || (xml_[i] == '\r' && (i + 1 >= xml_.size() || xml_[i + 1] != '\n'))) {
      ++line;
    }
  }
  return line;
}

absl::Status Source::Error(size_t line, std::string_view element, std::string_view problem) const {
  return absl::InvalidArgumentError(
      StrCat("policy.xml: line ", line, ": ", element, ": ", problem));
}

absl::Status Source::Error(pugi::xml_node node, std::string_view problem) const {
  return Error(LineAt(node.offset_debug()), node.name(), problem);
}

absl::Status Source::Error(pugi::xml_node node, pugi::xml_attribute attribute,
                           std::string_view problem) const {
  return Error(node, StrCat(attribute.name(), "=\"", attribute.value(), "\" ", problem));
}

absl::Status CheckNoText(const Source& source, pugi::xml_node node) {
  std::string_view text = IsText(node) ? node.value() : "";
  if (std::string_view trimmed = Trim(text); !trimmed.empty()) {
    // Point at the text itself, past its leading line breaks — but decoded text ("&#10;") can
    // hold breaks the source does not, so never past the source's last line.
    std::string_view leading = text.substr(0, static_cast<size_t>(trimmed.data() - text.data()));
    const size_t line =
        std::min(source.LineAt(node.offset_debug()) +
                     static_cast<size_t>(std::count(leading.begin(), leading.end(), '\n')),
                 source.LineAt(std::numeric_limits<ptrdiff_t>::max()));
    return source.Error(line, node.parent().name(),
                        StrCat("unexpected text \"", trimmed.substr(0, 40), "\""));
  }
  return absl::OkStatus();
}

absl::Status CheckAttributes(const Source& source, pugi::xml_node node,
                             std::initializer_list<std::string_view> attributes) {
  std::set<std::string_view> seen;
  for (pugi::xml_attribute attribute : node.attributes()) {
    std::string_view name = attribute.name();
    if (!Contains(attributes, name)) {
      return source.Error(
          node,
          attributes.size() == 0
              ? StrCat("unsupported attribute ", name, "; <", node.name(), "> takes none")
              : StrCat("unsupported attribute ", name, "; supported: ", StrJoin(attributes, ", ")));
    }
    if (!seen.insert(name).second) return source.Error(node, StrCat(name, " appears twice"));
  }
  return absl::OkStatus();
}

absl::Status CheckShape(const Source& source, pugi::xml_node node,
                        std::initializer_list<std::string_view> attributes,
                        std::initializer_list<std::string_view> children) {
  APIM_RETURN_IF_ERROR(CheckAttributes(source, node, attributes));
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element && !Contains(children, child.name())) {
      return source.Error(child, children.size() == 0 ? StrCat("unexpected inside <", node.name(),
                                                               ">, which takes no child elements")
                                                      : StrCat("unexpected inside <", node.name(),
                                                               ">; expected ", Tags(children)));
    }
    APIM_RETURN_IF_ERROR(CheckNoText(source, child));
  }
  return absl::OkStatus();
}

absl::Status ReadText(const Source& source, pugi::xml_node node, std::string& out) {
  out.clear();
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element) {
      return source.Error(child, StrCat("unexpected inside <", node.name(), ">, which holds text"));
    }
    if (IsText(child)) out.append(child.value());
  }
  APIM_RETURN_IF_ERROR(CheckAttributes(source, node, {}));
  // A literal that looks like a policy expression would be sent as is; say so instead.
  std::string_view trimmed = Trim(out);
  if (trimmed.starts_with("@(") || trimmed.starts_with("@{")) {
    return source.Error(node, "policy expressions are not supported here");
  }
  return absl::OkStatus();
}

absl::Status ReadNumber(const Source& source, pugi::xml_node node, const char* name, uint64_t min,
                        uint64_t max, std::string_view unit, std::optional<uint64_t>& out) {
  pugi::xml_attribute attribute = node.attribute(name);
  if (!attribute) return absl::OkStatus();
  std::string_view text = attribute.value();
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool whole = !text.empty() && end == text.data() + text.size();
  if (error == std::errc::result_out_of_range ||
      (whole && error == std::errc() && (value < min || value > max))) {
    return source.Error(
        node, attribute,
        StrCat("must be between ", min, " and ", max, unit.empty() ? "" : " ", unit));
  }
  if (!whole || error != std::errc()) {
    return source.Error(node, attribute, "must be a whole number");
  }
  out = value;
  return absl::OkStatus();
}

absl::Status ReadRequiredNumber(const Source& source, pugi::xml_node node, const char* name,
                                uint64_t min, uint64_t max, std::string_view unit, uint64_t& out) {
  std::optional<uint64_t> value;
  APIM_RETURN_IF_ERROR(ReadNumber(source, node, name, min, max, unit, value));
  if (!value) return source.Error(node, StrCat(name, " is required"));
  out = *value;
  return absl::OkStatus();
}

absl::Status ReadBool(const Source& source, pugi::xml_node node, const char* name,
                      std::optional<bool>& out) {
  pugi::xml_attribute attribute = node.attribute(name);
  if (!attribute) return absl::OkStatus();
  std::string_view text = attribute.value();
  if (text != "true" && text != "false") {
    return source.Error(node, attribute, "must be \"true\" or \"false\"");
  }
  out = text == "true";
  return absl::OkStatus();
}

absl::Status ReadChoice(const Source& source, pugi::xml_node node, const char* name,
                        std::initializer_list<std::string_view> choices, std::string& out) {
  pugi::xml_attribute attribute = node.attribute(name);
  if (!attribute) return absl::OkStatus();
  if (!Contains(choices, attribute.value())) {
    return source.Error(node, attribute, StrCat("must be one of: ", StrJoin(choices, ", ")));
  }
  out = attribute.value();
  return absl::OkStatus();
}

absl::Status ReadHeaderName(const Source& source, pugi::xml_node node, std::string& out) {
  pugi::xml_attribute attribute = node.attribute("name");
  if (!attribute) return source.Error(node, "name is required");
  if (!IsToken(attribute.value())) {
    return source.Error(node, attribute, "is not a valid header name");
  }
  out = attribute.value();
  return absl::OkStatus();
}

}  // namespace apim::policy::internal

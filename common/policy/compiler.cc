#include <algorithm>
#include <array>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "common/policy.h"
#include "common/policy/elements.h"
#include "common/policy/xml_reading.h"
#include "common/return_if_error.h"
#include "common/str_cat.h"

// Parse walks a document's sections, places each element where APIM allows it, and hands it to
// the element's reader (common/policy/elements.h).
namespace apim::policy {
namespace {

using internal::CheckAttributes;
using internal::CheckNoText;
using internal::Source;
using internal::Tags;

// Whitespace-only text is kept when it is an element's only content: <set-body> </set-body> is " ".
constexpr unsigned kParseOptions = pugi::parse_default | pugi::parse_ws_pcdata_single;

enum SectionBit : unsigned { kInbound = 1, kBackend = 2, kOutbound = 4, kOnError = 8 };
constexpr unsigned kAnySection = kInbound | kBackend | kOutbound | kOnError;
constexpr std::array<std::string_view, 4> kSectionNames = {"inbound", "backend", "outbound",
                                                           "on-error"};

template <size_t kIndex>
absl::Status CompileStep(const Source& source, pugi::xml_node node, Step& step) {
  std::variant_alternative_t<kIndex, Step> value;
  APIM_RETURN_IF_ERROR(internal::Read(source, node, value));
  step.emplace<kIndex>(std::move(value));
  return absl::OkStatus();
}

// Every policy element, in the order of Step's alternatives, with the sections it may appear in.
struct PolicyElement {
  std::string_view name;
  unsigned sections;
  absl::Status (*compile)(const Source&, pugi::xml_node, Step&);
};
constexpr std::array<PolicyElement, std::variant_size_v<Step>> kPolicyElements = {{
    {"base", kAnySection, &CompileStep<0>},
    {"set-header", kInbound | kOutbound | kOnError, &CompileStep<1>},
    {"check-header", kInbound, &CompileStep<2>},
    {"rate-limit", kInbound, &CompileStep<3>},
    {"rate-limit-by-key", kInbound, &CompileStep<4>},
    {"return-response", kInbound | kOutbound | kOnError, &CompileStep<5>},
    {"forward-request", kBackend, &CompileStep<6>},
    {"cache-lookup", kInbound, &CompileStep<7>},
    {"cache-store", kOutbound, &CompileStep<8>},
    {"validate-content", kInbound, &CompileStep<9>},
    {"quota", kInbound, &CompileStep<10>},
    {"quota-by-key", kInbound, &CompileStep<11>},
}};

std::string SupportedPolicies() {
  std::vector<std::string_view> names;
  for (const PolicyElement& element : kPolicyElements) names.push_back(element.name);
  std::sort(names.begin(), names.end());
  return StrJoin(names, ", ");
}

std::string SectionList(unsigned sections) {
  std::vector<std::string_view> names;
  for (size_t i = 0; i < kSectionNames.size(); ++i) {
    if (sections & (1u << i)) names.push_back(kSectionNames[i]);
  }
  return Tags(names);
}

absl::Status CompileSection(const Source& source, pugi::xml_node node, size_t index, Section& out) {
  APIM_RETURN_IF_ERROR(CheckAttributes(source, node, {}));
  for (pugi::xml_node child : node.children()) {
    APIM_RETURN_IF_ERROR(CheckNoText(source, child));
    if (child.type() != pugi::node_element) continue;
    std::string_view name = child.name();
    auto element = std::find_if(kPolicyElements.begin(), kPolicyElements.end(),
                                [&](const PolicyElement& e) { return e.name == name; });
    if (element == kPolicyElements.end()) {
      return source.Error(
          child, StrCat("unsupported policy <", name, ">; supported: ", SupportedPolicies()));
    }
    if (!(element->sections & (1u << index))) {
      return source.Error(child, StrCat("not allowed in <", kSectionNames[index], ">; only in ",
                                        SectionList(element->sections)));
    }
    if (name == "base" && out.has_base()) {
      return source.Error(child, StrCat("appears twice in <", kSectionNames[index], ">"));
    }
    Step step;
    APIM_RETURN_IF_ERROR(element->compile(source, child, step));
    out.steps.push_back(std::move(step));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view ElementName(const Step& step) { return kPolicyElements[step.index()].name; }

absl::StatusOr<Document> Parse(std::string_view xml, Rules rules) {
  Source source(xml, rules);
  pugi::xml_document tree;
  pugi::xml_parse_result parsed =
      tree.load_buffer(xml.data(), xml.size(), kParseOptions, pugi::encoding_utf8);
  if (!parsed) {
    return absl::InvalidArgumentError(
        StrCat("policy.xml: line ", source.LineAt(parsed.offset), ": ", parsed.description()));
  }
  pugi::xml_node root = tree.document_element();
  if (std::string_view(root.name()) != "policies") {
    return source.Error(root, "the root element must be <policies>");
  }
  for (pugi::xml_node node : tree.children()) {
    if (node.type() == pugi::node_element && node != root) {
      return source.Error(node, "only one root element, <policies>, is allowed");
    }
    APIM_RETURN_IF_ERROR(CheckNoText(source, node));
  }
  APIM_RETURN_IF_ERROR(CheckAttributes(source, root, {}));
  Document document;
  std::array<Section*, 4> sections = {&document.inbound, &document.backend, &document.outbound,
                                      &document.on_error};
  std::array<bool, 4> seen{};
  for (pugi::xml_node node : root.children()) {
    APIM_RETURN_IF_ERROR(CheckNoText(source, node));
    if (node.type() != pugi::node_element) continue;
    auto name = std::find(kSectionNames.begin(), kSectionNames.end(), node.name());
    if (name == kSectionNames.end()) {
      return source.Error(node, StrCat("unsupported section <", node.name(),
                                       ">; supported: ", StrJoin(kSectionNames, ", ")));
    }
    size_t index = static_cast<size_t>(name - kSectionNames.begin());
    if (std::exchange(seen[index], true)) {
      return source.Error(node, "appears twice; put its policies in one section");
    }
    APIM_RETURN_IF_ERROR(CompileSection(source, node, index, *sections[index]));
  }
  return document;
}

}  // namespace apim::policy

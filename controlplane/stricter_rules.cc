#include "controlplane/stricter_rules.h"

#include "common/str_cat.h"
#include "common/validation.h"

namespace apim::controlplane {
namespace {

template <typename Resource>
absl::Status CollectFrom(store::Store& store, std::string_view kind,
                         std::vector<std::string>& lines) {
  store::ListOptions page;
  page.page_size = 1000;
  do {
    absl::StatusOr<store::ListResult<Resource>> listed = store.List<Resource>(page);
    if (!listed.ok()) return listed.status();
    for (const Resource& resource : listed->items) {
      if (std::optional<std::string> warning = StricterRuleWarning(resource)) {
        const auto& key = resource.GetReflection()->GetString(
            resource, resource.GetDescriptor()->FindFieldByNumber(1));
        lines.push_back(StrCat(kind, " \"", key, "\": ", *warning));
      }
    }
    page.page_token = listed->next_page_token;
  } while (!page.page_token.empty());
  return absl::OkStatus();
}

}  // namespace

template <typename Resource>
std::optional<std::string> StricterRuleWarning(const Resource& resource) {
  absl::Status valid = Validate(resource, Rules::kWrite);
  if (valid.ok()) return std::nullopt;
  return StrCat("stored before a rule became stricter; still served, but the next change must fix ",
                "it: ", valid.message());
}

absl::StatusOr<std::vector<std::string>> StoredDocumentsBreakingNewerRules(store::Store& store) {
  std::vector<std::string> lines;
  for (absl::Status status : {
           CollectFrom<v1::Tier>(store, "tier", lines),
           CollectFrom<v1::Gateway>(store, "gateway", lines),
           CollectFrom<v1::Api>(store, "api", lines),
           CollectFrom<v1::DiagnosticSetting>(store, "diagnostic setting", lines),
           CollectFrom<v1::CacheSetting>(store, "cache setting", lines),
           CollectFrom<v1::Policy>(store, "policy", lines),
           CollectFrom<v1::Product>(store, "product", lines),
           CollectFrom<v1::Subscription>(store, "subscription", lines),
       }) {
    if (!status.ok()) return status;
  }
  return lines;
}

template std::optional<std::string> StricterRuleWarning(const v1::Tier&);
template std::optional<std::string> StricterRuleWarning(const v1::Gateway&);
template std::optional<std::string> StricterRuleWarning(const v1::Api&);
template std::optional<std::string> StricterRuleWarning(const v1::DiagnosticSetting&);
template std::optional<std::string> StricterRuleWarning(const v1::CacheSetting&);
template std::optional<std::string> StricterRuleWarning(const v1::Policy&);
template std::optional<std::string> StricterRuleWarning(const v1::Product&);
template std::optional<std::string> StricterRuleWarning(const v1::Subscription&);

}  // namespace apim::controlplane

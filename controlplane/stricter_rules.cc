#include "controlplane/stricter_rules.h"

#include "common/return_if_error.h"
#include "common/str_cat.h"
#include "common/validation.h"
#include "controlplane/store/resource_tables.h"

namespace apim::controlplane {
namespace {

template <typename Resource>
absl::Status CollectFrom(store::Store& store, std::vector<std::string>& lines) {
  store::ListOptions page;
  page.page_size = 1000;
  do {
    absl::StatusOr<store::ListResult<Resource>> listed = store.List<Resource>(page);
    if (!listed.ok()) return listed.status();
    for (const Resource& resource : listed->items) {
      if (std::optional<std::string> warning = StricterRuleWarning(resource)) {
        lines.push_back(StrCat(store::Table<Resource>::kKind, " \"",
                               store::Table<Resource>::Key(resource), "\": ", *warning));
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
  APIM_RETURN_IF_ERROR(CollectFrom<v1::Tier>(store, lines));
  APIM_RETURN_IF_ERROR(CollectFrom<v1::Gateway>(store, lines));
  APIM_RETURN_IF_ERROR(CollectFrom<v1::Api>(store, lines));
  APIM_RETURN_IF_ERROR(CollectFrom<v1::DiagnosticSetting>(store, lines));
  APIM_RETURN_IF_ERROR(CollectFrom<v1::CacheSetting>(store, lines));
  APIM_RETURN_IF_ERROR(CollectFrom<v1::Policy>(store, lines));
  APIM_RETURN_IF_ERROR(CollectFrom<v1::Product>(store, lines));
  APIM_RETURN_IF_ERROR(CollectFrom<v1::Subscription>(store, lines));
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

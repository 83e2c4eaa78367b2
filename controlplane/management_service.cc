#include "controlplane/management_service.h"

#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <optional>

#include "common/policy.h"
#include "common/return_if_error.h"
#include "common/scope.h"
#include "common/status.h"
#include "common/str_cat.h"
#include "common/tls/pem.h"
#include "common/validation.h"
#include "controlplane/admin_token.h"
#include "controlplane/stricter_rules.h"

namespace apim::controlplane {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::FieldMask;
using google::protobuf::util::FieldMaskUtil;
using google::protobuf::util::TimeUtil;

// Certificates that expire sooner than this carry a warning, in time to replace them.
constexpr int64_t kExpiryWarningSeconds = 30 * 24 * 3600;

// "DiagnosticSetting" -> "diagnostic_setting": the name a field path starts with in messages.
std::string KindOf(const google::protobuf::Descriptor& descriptor) {
  std::string kind;
  for (char c : descriptor.name()) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!kind.empty()) kind.push_back('_');
      kind.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      kind.push_back(c);
    }
  }
  return kind;
}

// Field 1 of every resource is its key: `name`, or `scope` for settings and policies.
const FieldDescriptor& KeyField(const google::protobuf::Descriptor& descriptor) {
  return *descriptor.FindFieldByNumber(1);
}

bool IsOutputOnly(std::string_view field) {
  return field == "etag" || field == "create_time" || field == "update_time" ||
         field == "built_in" || field == "warnings" || field.starts_with("primary_key") ||
         field.starts_with("secondary_key") || field == "private_key_set" || field == "subject" ||
         field == "subject_alt_names" || field == "issuer" || field == "not_before" ||
         field == "not_after" || field == "sha256_fingerprint" ||
         field == "shared_state.has_password";
}

// The mask path that sets or clears a gateway's Redis password by itself; without it, a write
// that leaves the password out keeps the stored one (KeepStoredSecrets).
constexpr std::string_view kSharedStatePasswordPath = "shared_state.password";

bool Names(const FieldMask& mask, std::string_view path) {
  return std::find(mask.paths().begin(), mask.paths().end(), path) != mask.paths().end();
}

template <typename Resource>
absl::Status ValidateMask(const FieldMask& mask) {
  const google::protobuf::Descriptor& descriptor = *Resource::descriptor();
  for (const std::string& path : mask.paths()) {
    // A message field may be named whole ("backend_tls") or one of its fields at a time
    // ("backend_tls.server_name").
    const size_t dot = path.find('.');
    const FieldDescriptor* field = descriptor.FindFieldByName(path.substr(0, dot));
    if (field != nullptr && dot != std::string::npos &&
        (field->message_type() == nullptr ||
         field->message_type()->FindFieldByName(path.substr(dot + 1)) == nullptr)) {
      field = nullptr;
    }
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("update_mask: ", KindOf(descriptor), " has no field \"", path, "\""));
    }
    if (field == &KeyField(descriptor) || IsOutputOnly(path)) {
      return absl::InvalidArgumentError(
          StrCat("update_mask: ", KindOf(descriptor), ".", path, " cannot be changed"));
    }
  }
  return absl::OkStatus();
}

// Output-only fields sent by a client are ignored rather than rejected, so a resource read with
// Get can be edited and sent back whole.
template <typename Resource>
void ClearOutputOnly(Resource& resource) {
  resource.clear_etag();
  resource.clear_create_time();
  resource.clear_update_time();
  if constexpr (std::is_same_v<Resource, v1::Tier>) resource.clear_built_in();
  if constexpr (requires { resource.clear_warnings(); }) resource.clear_warnings();
  if constexpr (std::is_same_v<Resource, v1::Subscription>) {
    resource.clear_primary_key();
    resource.clear_secondary_key();
    resource.clear_primary_key_sha256();
    resource.clear_secondary_key_sha256();
  }
  if constexpr (std::is_same_v<Resource, v1::Api>) {
    if (resource.has_backend_tls()) resource.mutable_backend_tls()->clear_client_key_set();
  }
  if constexpr (std::is_same_v<Resource, v1::Gateway>) {
    if (resource.has_shared_state()) resource.mutable_shared_state()->clear_has_password();
  }
  if constexpr (std::is_same_v<Resource, v1::Certificate>) {
    resource.clear_private_key_set();
    resource.clear_subject();
    resource.clear_subject_alt_names();
    resource.clear_issuer();
    resource.clear_not_before();
    resource.clear_not_after();
    resource.clear_sha256_fingerprint();
  }
}

// A write that leaves a secret empty keeps the stored one (what Get returned had it left out,
// so a resource read, edited and sent back, or exported and imported, keeps its secrets). A
// client key goes with its certificate: clearing the certificate drops it. A gateway's Redis
// password goes with its shared state (clearing that drops it), and an update_mask that names
// shared_state.password sets it to what was sent, an empty one included.
template <typename Resource>
void KeepStoredSecrets(const Resource& stored, Resource& written, const FieldMask& mask) {
  if constexpr (std::is_same_v<Resource, v1::Gateway>) {
    v1::SharedState without_password = written.shared_state();
    without_password.clear_password();
    if (written.shared_state().password().empty() && without_password.ByteSizeLong() > 0 &&
        !stored.shared_state().password().empty() && !Names(mask, kSharedStatePasswordPath)) {
      written.mutable_shared_state()->set_password(stored.shared_state().password());
    }
  }
  if constexpr (std::is_same_v<Resource, v1::Api>) {
    if (written.backend_tls().client_key().empty() &&
        !written.backend_tls().client_certificate().empty() &&
        !stored.backend_tls().client_key().empty()) {
      written.mutable_backend_tls()->set_client_key(stored.backend_tls().client_key());
    }
  }
  if constexpr (std::is_same_v<Resource, v1::Certificate>) {
    if (written.private_key().empty()) written.set_private_key(stored.private_key());
  }
}

// A new chain written without a new key must belong to the stored key; say so, rather than blame
// a key the caller did not send.
template <typename Resource>
absl::Status CheckKeptSecretsMatch(const Resource&, const Resource&) {
  return absl::OkStatus();
}
template <>
absl::Status CheckKeptSecretsMatch(const v1::Certificate& stored, const v1::Certificate& written) {
  if (written.private_key() != stored.private_key() ||
      written.certificate_chain() == stored.certificate_chain() ||
      !tls::CheckCertificates("", written.certificate_chain()).ok() ||
      tls::CheckKeyMatchesCertificate(written.certificate_chain(), written.private_key()).ok()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "certificate.certificate_chain: its first certificate does not belong to the stored private "
      "key; send the new private_key with it");
}

// Settings at global scope may ask for what SSE APIs must never get; they are accepted and apply
// to the other APIs, and the response says what is not applied (the worker enforces it too).
template <typename Resource>
void AddSseWarnings(Resource&) {}
template <>
void AddSseWarnings(v1::DiagnosticSetting& setting) {
  if (setting.scope() == kGlobalScope &&
      (setting.request_body_bytes() > 0 || setting.response_body_bytes() > 0)) {
    setting.add_warnings(
        "not applied to SSE APIs: body logging would hold their events; other APIs log bodies");
  }
}
template <>
void AddSseWarnings(v1::CacheSetting& setting) {
  if (setting.scope() == kGlobalScope && setting.enabled()) {
    setting.add_warnings(
        "not applied to SSE APIs: their responses are never cached; other APIs may be");
  }
}
template <>
void AddSseWarnings(v1::Policy& policy) {
  if (policy.scope() != kGlobalScope) return;
  absl::StatusOr<policy::Document> document = policy::Parse(policy.xml(), Rules::kServe);
  if (!document.ok()) return;
  for (const std::string& reason : policy::SseViolations(*document)) {
    policy.add_warnings(StrCat("not applied to SSE APIs: ", reason));
  }
}

std::string Rfc3339(int64_t unix_seconds) {
  return TimeUtil::ToString(TimeUtil::SecondsToTimestamp(unix_seconds));
}

// What the leaf certificate says about itself, and a warning when it is about to expire (or has:
// it was valid when stored).
void DescribeCertificate(v1::Certificate& certificate) {
  absl::StatusOr<tls::LeafCertificate> leaf =
      tls::ReadLeafCertificate("certificate.certificate_chain", certificate.certificate_chain());
  if (!leaf.ok()) return;  // Validated when written.
  certificate.set_subject(leaf->subject);
  certificate.set_issuer(leaf->issuer);
  certificate.mutable_subject_alt_names()->Assign(leaf->subject_alt_names.begin(),
                                                  leaf->subject_alt_names.end());
  *certificate.mutable_not_before() = TimeUtil::SecondsToTimestamp(leaf->not_before);
  *certificate.mutable_not_after() = TimeUtil::SecondsToTimestamp(leaf->not_after);
  certificate.set_sha256_fingerprint(leaf->sha256_fingerprint);
  const int64_t left = leaf->not_after - std::time(nullptr);
  if (left < 0) {
    certificate.add_warnings(
        StrCat("expired at ", Rfc3339(leaf->not_after), ": clients refuse it; replace it"));
  } else if (left < kExpiryWarningSeconds) {
    certificate.add_warnings(StrCat("expires in ", left / 86400, " days, at ",
                                    Rfc3339(leaf->not_after), "; replace it before then"));
  }
}

// A hostname its certificate does not name is accepted (the certificate may be replaced next),
// but clients that check names will refuse the handshake: the reply says so.
void AddHostnameWarnings(v1::Gateway& gateway, store::Store& store) {
  std::map<std::string, std::optional<tls::LeafCertificate>> leaves;
  for (const v1::HostnameBinding& binding : gateway.hostnames()) {
    auto [leaf, first] = leaves.try_emplace(binding.certificate());
    if (first) {
      absl::StatusOr<v1::Certificate> certificate =
          store.Get<v1::Certificate>(binding.certificate());
      if (!certificate.ok()) continue;
      absl::StatusOr<tls::LeafCertificate> read =
          tls::ReadLeafCertificate("", certificate->certificate_chain());
      if (read.ok()) leaf->second = *std::move(read);
    }
    if (leaf->second && !tls::CoversHostname(*leaf->second, binding.hostname())) {
      gateway.add_warnings(
          StrCat("hostname \"", binding.hostname(), "\" is not among the names of certificate \"",
                 binding.certificate(), "\" (", StrJoin(leaf->second->subject_alt_names, ", "),
                 "): clients that check names will refuse it"));
    }
  }
}

// A resource as it is returned: without what stays in the control plane (subscription key
// hashes, private keys, a gateway's Redis password), with what the caller should know (SSE
// warnings, a newer rule it breaks, what a certificate says and whether it names the hostnames
// bound to it).
template <typename Resource>
void PrepareForReply(Resource& resource, store::Store& store) {
  if constexpr (std::is_same_v<Resource, v1::Subscription>) {
    resource.clear_primary_key_sha256();
    resource.clear_secondary_key_sha256();
  }
  AddSseWarnings(resource);
  if constexpr (std::is_same_v<Resource, v1::Gateway>) AddHostnameWarnings(resource, store);
  // No rule on certificates became stricter; one that expired since it was stored is said so.
  if constexpr (std::is_same_v<Resource, v1::Certificate>) {
    DescribeCertificate(resource);
  } else if (std::optional<std::string> warning = StricterRuleWarning(resource)) {
    resource.add_warnings(*std::move(warning));
  }
  // Secrets never leave the control plane except to workers: the reply says one is stored.
  // (Last: the rules above judge the resource as stored.)
  if constexpr (std::is_same_v<Resource, v1::Api>) {
    if (resource.has_backend_tls()) {
      v1::BackendTls& tls = *resource.mutable_backend_tls();
      tls.set_client_key_set(!tls.client_key().empty());
      tls.clear_client_key();
    }
  }
  if constexpr (std::is_same_v<Resource, v1::Certificate>) {
    resource.set_private_key_set(!resource.private_key().empty());
    resource.clear_private_key();
  }
  if constexpr (std::is_same_v<Resource, v1::Gateway>) {
    if (resource.has_shared_state()) {
      v1::SharedState& shared = *resource.mutable_shared_state();
      shared.set_has_password(!shared.password().empty());
      shared.clear_password();
    }
  }
}

grpc::Status Reply(const absl::Status& status) { return ToGrpcStatus(status); }

template <typename Resource>
grpc::Status Reply(const absl::StatusOr<Resource>& result, Resource* response,
                   store::Store& store) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *result;
  PrepareForReply(*response, store);
  return grpc::Status::OK;
}

}  // namespace

ManagementService::ManagementService(store::Store& store, WorkerRegistry& workers,
                                     std::string admin_token_sha256)
    : store_(store), workers_(workers), admin_token_sha256_(std::move(admin_token_sha256)) {}

grpc::Status ManagementService::RotateGatewayToken(grpc::ServerContext* context,
                                                   const v1::RotateGatewayTokenRequest* request,
                                                   v1::GatewayToken* response) {
  if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);
  if (request->name().empty()) return Reply(absl::InvalidArgumentError("name: is required"));
  absl::StatusOr<std::string> token = GenerateToken();
  if (!token.ok()) return Reply(token.status());
  if (absl::Status saved = store_.PutGatewayTokenHash(request->name(), Sha256Hex(*token));
      !saved.ok()) {
    return Reply(saved);
  }
  spdlog::info("rotated the worker token of gateway \"{}\"", request->name());
  response->set_gateway(request->name());
  response->set_token(*token);
  return grpc::Status::OK;
}

grpc::Status ManagementService::ListGatewayWorkers(grpc::ServerContext* context,
                                                   const v1::ListGatewayWorkersRequest* request,
                                                   v1::ListGatewayWorkersResponse* response) {
  if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);
  if (absl::StatusOr<v1::Gateway> gateway = store_.Get<v1::Gateway>(request->name());
      !gateway.ok()) {
    return Reply(gateway.status());
  }
  for (v1::GatewayWorker& worker : workers_.List(request->name())) {
    *response->add_workers() = std::move(worker);
  }
  return grpc::Status::OK;
}

absl::Status ManagementService::Authorize(const grpc::ServerContext& context) const {
  auto found = context.client_metadata().find("authorization");
  if (found == context.client_metadata().end()) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata \"authorization: Bearer <admin token>\"");
  }
  std::string_view value(found->second.data(), found->second.size());
  constexpr std::string_view kScheme = "bearer ";
  bool bearer = value.size() > kScheme.size();
  for (size_t i = 0; bearer && i < kScheme.size(); ++i) {
    bearer = std::tolower(static_cast<unsigned char>(value[i])) == kScheme[i];
  }
  if (!bearer) {
    return absl::UnauthenticatedError("authorization: expected \"Bearer <admin token>\"");
  }
  if (!TokenMatches(admin_token_sha256_, value.substr(kScheme.size()))) {
    return absl::UnauthenticatedError("authorization: the admin token is not valid");
  }
  return absl::OkStatus();
}

template <typename Resource>
absl::StatusOr<Resource> ManagementService::Create(const Resource& request) {
  Resource resource = request;
  ClearOutputOnly(resource);
  if (absl::Status valid = apim::Validate(resource); !valid.ok()) return valid;
  // A new subscription gets two keys, returned once; only their hashes are stored.
  std::string primary_key, secondary_key;
  if constexpr (std::is_same_v<Resource, v1::Subscription>) {
    absl::StatusOr<std::string> primary = GenerateToken();
    absl::StatusOr<std::string> secondary = GenerateToken();
    if (!primary.ok() || !secondary.ok()) return absl::InternalError("no randomness for keys");
    primary_key = *primary;
    secondary_key = *secondary;
    resource.set_primary_key_sha256(Sha256Hex(primary_key));
    resource.set_secondary_key_sha256(Sha256Hex(secondary_key));
  }
  absl::StatusOr<Resource> created = store_.Create(resource);
  if constexpr (std::is_same_v<Resource, v1::Subscription>) {
    if (created.ok()) {
      created->set_primary_key(primary_key);
      created->set_secondary_key(secondary_key);
    }
  }
  if (created.ok()) {
    spdlog::info("created {} \"{}\" (etag {})", KindOf(*Resource::descriptor()),
                 created->GetReflection()->GetString(*created, &KeyField(*Resource::descriptor())),
                 created->etag());
  }
  return created;
}

template <typename Resource>
absl::StatusOr<Resource> ManagementService::Update(const Resource& request, const FieldMask& mask) {
  const google::protobuf::Descriptor& descriptor = *Resource::descriptor();
  const std::string key = request.GetReflection()->GetString(request, &KeyField(descriptor));
  if (key.empty()) {
    return absl::InvalidArgumentError(
        StrCat(KindOf(descriptor), ".", KeyField(descriptor).name(), ": is required"));
  }
  if (absl::Status valid = ValidateMask<Resource>(mask); !valid.ok()) return valid;
  absl::StatusOr<Resource> updated =
      store_.Update<Resource>(key, request.etag(), [&](Resource& current) {
        const Resource stored = current;
        if (mask.paths_size() == 0) {
          Resource replacement = request;
          ClearOutputOnly(replacement);
          if constexpr (std::is_same_v<Resource, v1::Subscription>) {
            // Keys are not part of a replace: they change only by regeneration.
            replacement.set_primary_key_sha256(current.primary_key_sha256());
            replacement.set_secondary_key_sha256(current.secondary_key_sha256());
          }
          current = std::move(replacement);
        } else {
          FieldMaskUtil::MergeOptions options;
          options.set_replace_message_fields(true);
          options.set_replace_repeated_fields(true);
          FieldMaskUtil::MergeMessageTo(request, mask, options, &current);
          if constexpr (std::is_same_v<Resource, v1::Api>) {
            if (current.has_backend_tls()) current.mutable_backend_tls()->clear_client_key_set();
          }
          if constexpr (std::is_same_v<Resource, v1::Gateway>) {
            if (current.has_shared_state()) current.mutable_shared_state()->clear_has_password();
          }
        }
        KeepStoredSecrets(stored, current, mask);
        APIM_RETURN_IF_ERROR(CheckKeptSecretsMatch(stored, current));
        return apim::Validate(current);
      });
  if (updated.ok()) {
    spdlog::info("updated {} \"{}\" (etag {})", KindOf(descriptor), key, updated->etag());
  }
  return updated;
}

template <typename Resource>
absl::Status ManagementService::Delete(const v1::DeleteRequest& request) {
  const std::string kind = KindOf(*Resource::descriptor());
  if (request.name().empty()) return absl::InvalidArgumentError("name: is required");
  absl::Status deleted = store_.Delete<Resource>(request.name(), request.etag());
  if (deleted.ok()) spdlog::info("deleted {} \"{}\"", kind, request.name());
  return deleted;
}

template <typename Resource, typename Response>
absl::Status ManagementService::List(const v1::ListRequest& request, Response& response,
                                     google::protobuf::RepeatedPtrField<Resource>& items) {
  absl::StatusOr<store::ListResult<Resource>> page =
      store_.List<Resource>({request.page_size(), request.page_token()});
  if (!page.ok()) return page.status();
  for (Resource& resource : page->items) {
    PrepareForReply(resource, store_);
    *items.Add() = std::move(resource);
  }
  response.set_next_page_token(page->next_page_token);
  return absl::OkStatus();
}

// The generated service has five differently named methods per resource; each one authorises
// and then calls the generic implementation above.
#define APIM_DEFINE_CRUD(Type, Plural, field, plural_field)                                       \
  grpc::Status ManagementService::Create##Type(grpc::ServerContext* context,                      \
                                               const v1::Create##Type##Request* request,          \
                                               v1::Type* response) {                              \
    if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);                  \
    return Reply(Create(request->field()), response, store_);                                     \
  }                                                                                               \
  grpc::Status ManagementService::Get##Type(grpc::ServerContext* context,                         \
                                            const v1::GetRequest* request, v1::Type* response) {  \
    if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);                  \
    return Reply(store_.Get<v1::Type>(request->name()), response, store_);                        \
  }                                                                                               \
  grpc::Status ManagementService::List##Plural(grpc::ServerContext* context,                      \
                                               const v1::ListRequest* request,                    \
                                               v1::List##Plural##Response* response) {            \
    if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);                  \
    return Reply(List(*request, *response, *response->mutable_##plural_field()));                 \
  }                                                                                               \
  grpc::Status ManagementService::Update##Type(grpc::ServerContext* context,                      \
                                               const v1::Update##Type##Request* request,          \
                                               v1::Type* response) {                              \
    if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);                  \
    return Reply(Update(request->field(), request->update_mask()), response, store_);             \
  }                                                                                               \
  grpc::Status ManagementService::Delete##Type(                                                   \
      grpc::ServerContext* context, const v1::DeleteRequest* request, google::protobuf::Empty*) { \
    if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);                  \
    return Reply(Delete<v1::Type>(*request));                                                     \
  }

APIM_DEFINE_CRUD(Tier, Tiers, tier, tiers)
APIM_DEFINE_CRUD(Certificate, Certificates, certificate, certificates)
APIM_DEFINE_CRUD(Gateway, Gateways, gateway, gateways)
APIM_DEFINE_CRUD(Api, Apis, api, apis)
APIM_DEFINE_CRUD(DiagnosticSetting, DiagnosticSettings, diagnostic_setting, diagnostic_settings)
APIM_DEFINE_CRUD(CacheSetting, CacheSettings, cache_setting, cache_settings)
APIM_DEFINE_CRUD(Policy, Policies, policy, policies)
APIM_DEFINE_CRUD(Product, Products, product, products)
APIM_DEFINE_CRUD(Subscription, Subscriptions, subscription, subscriptions)

grpc::Status ManagementService::RegenerateSubscriptionKey(
    grpc::ServerContext* context, const v1::RegenerateSubscriptionKeyRequest* request,
    v1::Subscription* response) {
  if (absl::Status auth = Authorize(*context); !auth.ok()) return Reply(auth);
  const bool primary = request->key() == "primary";
  if (!primary && request->key() != "secondary") {
    return Reply(absl::InvalidArgumentError("key: must be \"primary\" or \"secondary\""));
  }
  absl::StatusOr<std::string> key = GenerateToken();
  if (!key.ok()) return Reply(key.status());
  absl::StatusOr<v1::Subscription> updated =
      store_.Update<v1::Subscription>(request->name(), "", [&](v1::Subscription& subscription) {
        if (primary) {
          subscription.set_primary_key_sha256(Sha256Hex(*key));
        } else {
          subscription.set_secondary_key_sha256(Sha256Hex(*key));
        }
        return absl::OkStatus();
      });
  if (!updated.ok()) return Reply(updated.status());
  spdlog::info("regenerated the {} key of subscription \"{}\"", request->key(), request->name());
  grpc::Status status = Reply(updated, response, store_);
  (primary ? *response->mutable_primary_key() : *response->mutable_secondary_key()) = *key;
  return status;
}

}  // namespace apim::controlplane

#include "cli/resource_kinds.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/reflection.h>

#include <cstdlib>
#include <iostream>
#include <utility>

namespace apim::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using Stub = ManagementStub;

// The field of a request or response message that holds the resource (Create/Update requests) or
// the page of resources (List responses). The protos give each exactly one; a mistake there fails
// the first time the table is built, which every unit test does.
const FieldDescriptor& FieldHolding(const Descriptor& container, const Descriptor& resource) {
  for (int i = 0; i < container.field_count(); ++i) {
    if (container.field(i)->message_type() == &resource) return *container.field(i);
  }
  std::cerr << "apimctl: " << container.full_name() << " has no " << resource.full_name()
            << " field\n";
  std::abort();
}

// Binds one resource's RPCs. The stub's methods differ per resource only in their message types,
// which are deduced from the method pointers.
template <typename Resource, typename CreateRequest, typename ListResponse, typename UpdateRequest>
ResourceCalls BindCalls(
    grpc::Status (Stub::*create)(grpc::ClientContext*, const CreateRequest&, Resource*),
    grpc::Status (Stub::*get)(grpc::ClientContext*, const v1::GetRequest&, Resource*),
    grpc::Status (Stub::*list)(grpc::ClientContext*, const v1::ListRequest&, ListResponse*),
    grpc::Status (Stub::*update)(grpc::ClientContext*, const UpdateRequest&, Resource*),
    grpc::Status (Stub::*remove)(grpc::ClientContext*, const v1::DeleteRequest&,
                                 google::protobuf::Empty*)) {
  const Descriptor& resource_type = *Resource::descriptor();
  const FieldDescriptor* create_field = &FieldHolding(*CreateRequest::descriptor(), resource_type);
  const FieldDescriptor* update_field = &FieldHolding(*UpdateRequest::descriptor(), resource_type);
  const FieldDescriptor* list_field = &FieldHolding(*ListResponse::descriptor(), resource_type);

  return ResourceCalls{
      .create =
          [create, create_field](Stub& stub, grpc::ClientContext& context, const Message& resource,
                                 Message& out) {
            CreateRequest request;
            request.GetReflection()->MutableMessage(&request, create_field)->CopyFrom(resource);
            Resource response;
            grpc::Status status = (stub.*create)(&context, request, &response);
            out.CopyFrom(response);
            return status;
          },
      .get =
          [get](Stub& stub, grpc::ClientContext& context, const v1::GetRequest& request,
                Message& out) {
            Resource response;
            grpc::Status status = (stub.*get)(&context, request, &response);
            out.CopyFrom(response);
            return status;
          },
      .list =
          [list, list_field](
              Stub& stub, grpc::ClientContext& context, const v1::ListRequest& request,
              std::vector<std::unique_ptr<Message>>& items, std::string& next_page_token) {
            ListResponse response;
            grpc::Status status = (stub.*list)(&context, request, &response);
            for (const Resource& item :
                 response.GetReflection()->template GetRepeatedFieldRef<Resource>(response,
                                                                                  list_field)) {
              items.push_back(std::make_unique<Resource>(item));
            }
            next_page_token = response.next_page_token();
            return status;
          },
      .update =
          [update, update_field](Stub& stub, grpc::ClientContext& context, const Message& resource,
                                 const google::protobuf::FieldMask& update_mask, Message& out) {
            UpdateRequest request;
            request.GetReflection()->MutableMessage(&request, update_field)->CopyFrom(resource);
            *request.mutable_update_mask() = update_mask;
            Resource response;
            grpc::Status status = (stub.*update)(&context, request, &response);
            out.CopyFrom(response);
            return status;
          },
      .remove =
          [remove](Stub& stub, grpc::ClientContext& context, const v1::DeleteRequest& request) {
            google::protobuf::Empty response;
            return (stub.*remove)(&context, request, &response);
          },
  };
}

std::vector<ResourceKind> BuildResourceKinds() {
  std::vector<ResourceKind> kinds;
  kinds.push_back({
      .command = "tier",
      .plural = "tiers",
      .summary = "What a gateway's workers may do with connections",
      .prototype = &v1::Tier::default_instance(),
      .key_field = "name",
      .key_help = "The tier's name",
      .columns = {{"NAME", "name"},
                  {"LONG-LIVED", "long_lived_connections"},
                  {"MAX-RESPONSE-S", "max_response_duration_seconds"},
                  {"IDLE-S", "idle_timeout_seconds"},
                  {"HEARTBEAT-S", "heartbeat_interval_seconds"},
                  {"MAX-STREAMS", "max_concurrent_streams"},
                  {"BUILT-IN", "built_in"}},
      .calls = BindCalls(&Stub::CreateTier, &Stub::GetTier, &Stub::ListTiers, &Stub::UpdateTier,
                         &Stub::DeleteTier),
  });
  kinds.push_back({
      .command = "certificate",
      .plural = "certificates",
      .summary = "TLS certificates (with their keys, never shown) for gateways' hostnames",
      .prototype = &v1::Certificate::default_instance(),
      .key_field = "name",
      .key_help = "The certificate's name",
      .columns = {{"NAME", "name"},
                  {"SUBJECT", "subject"},
                  {"NAMES", "subject_alt_names"},
                  {"NOT-AFTER", "not_after"},
                  {"SHA256-FINGERPRINT", "sha256_fingerprint"}},
      .calls = BindCalls(&Stub::CreateCertificate, &Stub::GetCertificate, &Stub::ListCertificates,
                         &Stub::UpdateCertificate, &Stub::DeleteCertificate),
  });
  kinds.push_back({
      .command = "gateway",
      .plural = "gateways",
      .summary = "Named groups of data-plane workers that share a tier",
      .prototype = &v1::Gateway::default_instance(),
      .key_field = "name",
      .key_help = "The gateway's name",
      .columns = {{"NAME", "name"},
                  {"TIER", "tier"},
                  {"HOSTNAMES", "hostnames", Column::Show::kFirstField},
                  {"SHARED-STATE", "shared_state", Column::Show::kSetFields},
                  {"DESCRIPTION", "description"}},
      .calls = BindCalls(&Stub::CreateGateway, &Stub::GetGateway, &Stub::ListGateways,
                         &Stub::UpdateGateway, &Stub::DeleteGateway),
  });
  kinds.push_back({
      .command = "api",
      .plural = "apis",
      .summary = "APIs routed by host and path prefix to a backend",
      .prototype = &v1::Api::default_instance(),
      .key_field = "name",
      .key_help = "The API's name",
      .columns = {{"NAME", "name"},
                  {"PATH-PREFIX", "path_prefix"},
                  {"HOST", "host"},
                  {"BACKEND", "backend_url"},
                  {"SSE", "sse"},
                  {"GATEWAYS", "gateways"}},
      .calls = BindCalls(&Stub::CreateApi, &Stub::GetApi, &Stub::ListApis, &Stub::UpdateApi,
                         &Stub::DeleteApi),
  });
  kinds.push_back({
      .command = "product",
      .plural = "products",
      .summary = "Products: groups of APIs that subscriptions can be scoped to",
      .prototype = &v1::Product::default_instance(),
      .key_field = "name",
      .key_help = "The product's name",
      .columns = {{"NAME", "name"}, {"DISPLAY-NAME", "display_name"}, {"APIS", "apis"}},
      .calls = BindCalls(&Stub::CreateProduct, &Stub::GetProduct, &Stub::ListProducts,
                         &Stub::UpdateProduct, &Stub::DeleteProduct),
  });
  kinds.push_back({
      .command = "subscription",
      .plural = "subscriptions",
      .summary = "Subscriptions: keys for all APIs, one API or one product (keys shown once)",
      .prototype = &v1::Subscription::default_instance(),
      .key_field = "name",
      .key_help = "The subscription's name",
      .columns = {{"NAME", "name"},
                  {"SCOPE", "scope"},
                  {"SUSPENDED", "suspended"},
                  {"MAX-STREAMS", "max_concurrent_streams"},
                  {"PRIMARY-KEY", "primary_key"},
                  {"SECONDARY-KEY", "secondary_key"}},
      .calls =
          BindCalls(&Stub::CreateSubscription, &Stub::GetSubscription, &Stub::ListSubscriptions,
                    &Stub::UpdateSubscription, &Stub::DeleteSubscription),
  });
  kinds.push_back({
      .command = "diagnostic",
      .plural = "diagnostic_settings",
      .summary = "Access-log settings, global or per API",
      .prototype = &v1::DiagnosticSetting::default_instance(),
      .key_field = "scope",
      .key_help = "Scope: global or api:NAME",
      .columns = {{"SCOPE", "scope"},
                  {"SAMPLING", "sampling_percentage"},
                  {"VERBOSITY", "verbosity"},
                  {"REQ-BODY", "request_body_bytes"},
                  {"RESP-BODY", "response_body_bytes"}},
      .calls = BindCalls(&Stub::CreateDiagnosticSetting, &Stub::GetDiagnosticSetting,
                         &Stub::ListDiagnosticSettings, &Stub::UpdateDiagnosticSetting,
                         &Stub::DeleteDiagnosticSetting),
  });
  kinds.push_back({
      .command = "cache",
      .plural = "cache_settings",
      .summary = "Response-cache settings, global or per API",
      .prototype = &v1::CacheSetting::default_instance(),
      .key_field = "scope",
      .key_help = "Scope: global or api:NAME",
      .columns = {{"SCOPE", "scope"}, {"ENABLED", "enabled"}, {"TTL-S", "default_ttl_seconds"}},
      .calls =
          BindCalls(&Stub::CreateCacheSetting, &Stub::GetCacheSetting, &Stub::ListCacheSettings,
                    &Stub::UpdateCacheSetting, &Stub::DeleteCacheSetting),
  });
  kinds.push_back({
      .command = "policy",
      .plural = "policies",
      .summary = "Policy documents in API Management XML, global, per API or per operation",
      .prototype = &v1::Policy::default_instance(),
      .key_field = "scope",
      .key_help = "Scope: global, api:NAME or operation:API/OPERATION",
      .columns = {{"SCOPE", "scope"}, {"BYTES", "xml", Column::Show::kByteSize}, {"ETAG", "etag"}},
      .file_field = "xml",
      .calls = BindCalls(&Stub::CreatePolicy, &Stub::GetPolicy, &Stub::ListPolicies,
                         &Stub::UpdatePolicy, &Stub::DeletePolicy),
  });
  return kinds;
}

}  // namespace

const std::vector<ResourceKind>& ResourceKinds() {
  static const std::vector<ResourceKind> kinds = BuildResourceKinds();
  return kinds;
}

bool IsOutputOnly(const FieldDescriptor& field) {
  const std::string& name = field.name();
  return name == "etag" || name == "create_time" || name == "update_time" || name == "built_in" ||
         name == "warnings" || name.starts_with("primary_key") ||
         name.starts_with("secondary_key") || name == "private_key_set" || name == "subject" ||
         name == "subject_alt_names" || name == "issuer" || name == "not_before" ||
         name == "not_after" || name == "sha256_fingerprint" || name == "client_key_set" ||
         name == "has_password";
}

const std::vector<Column>& GatewayWorkerColumns() {
  static const std::vector<Column> columns = {
      {"WORKER", "worker_id"},          {"ADDRESS", "address"},
      {"CONNECTED", "connected"},       {"ACKED", "acked_version"},
      {"NACKED", "nacked_version"},     {"LAST-ERROR", "last_nack_error"},
      {"LAST-CONTACT", "last_contact"}, {"DISCONNECTED-BECAUSE", "disconnect_reason"}};
  return columns;
}

}  // namespace apim::cli

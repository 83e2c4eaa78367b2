#pragma once
// The Management gRPC service: authorises each call with the admin bearer token, validates the
// resource's shape, and hands it to the store, which checks references and writes atomically.

#include <string>

#include "apim/v1/management.grpc.pb.h"
#include "controlplane/store/store.h"
#include "controlplane/worker_registry.h"

namespace apim::controlplane {

// Declares the five CRUD methods gRPC generates for one resource.
#define APIM_DECLARE_CRUD(Type, Plural)                                                     \
  grpc::Status Create##Type(grpc::ServerContext* context,                                   \
                            const v1::Create##Type##Request* request, v1::Type* response)   \
      override;                                                                             \
  grpc::Status Get##Type(grpc::ServerContext* context, const v1::GetRequest* request,       \
                         v1::Type* response) override;                                      \
  grpc::Status List##Plural(grpc::ServerContext* context, const v1::ListRequest* request,   \
                            v1::List##Plural##Response* response) override;                 \
  grpc::Status Update##Type(grpc::ServerContext* context,                                   \
                            const v1::Update##Type##Request* request, v1::Type* response)   \
      override;                                                                             \
  grpc::Status Delete##Type(grpc::ServerContext* context, const v1::DeleteRequest* request, \
                            google::protobuf::Empty* response) override;

class ManagementService final : public v1::Management::Service {
 public:
  // `store` and `workers` must outlive the service.
  ManagementService(store::Store& store, WorkerRegistry& workers, std::string admin_token_sha256);

  APIM_DECLARE_CRUD(Tier, Tiers)
  APIM_DECLARE_CRUD(Certificate, Certificates)
  APIM_DECLARE_CRUD(Gateway, Gateways)
  APIM_DECLARE_CRUD(Api, Apis)
  APIM_DECLARE_CRUD(DiagnosticSetting, DiagnosticSettings)
  APIM_DECLARE_CRUD(CacheSetting, CacheSettings)
  APIM_DECLARE_CRUD(Policy, Policies)
  APIM_DECLARE_CRUD(Product, Products)
  APIM_DECLARE_CRUD(Subscription, Subscriptions)

  grpc::Status RegenerateSubscriptionKey(grpc::ServerContext* context,
                                         const v1::RegenerateSubscriptionKeyRequest* request,
                                         v1::Subscription* response) override;

  grpc::Status RotateGatewayToken(grpc::ServerContext* context,
                                  const v1::RotateGatewayTokenRequest* request,
                                  v1::GatewayToken* response) override;
  grpc::Status ListGatewayWorkers(grpc::ServerContext* context,
                                  const v1::ListGatewayWorkersRequest* request,
                                  v1::ListGatewayWorkersResponse* response) override;

 private:
  absl::Status Authorize(const grpc::ServerContext& context) const;

  template <typename Resource>
  absl::StatusOr<Resource> Create(const Resource& resource);
  template <typename Resource>
  absl::StatusOr<Resource> Update(const Resource& resource,
                                  const google::protobuf::FieldMask& mask);
  template <typename Resource>
  absl::Status Delete(const v1::DeleteRequest& request);
  template <typename Resource, typename Response>
  absl::Status List(const v1::ListRequest& request, Response& response,
                    google::protobuf::RepeatedPtrField<Resource>& items);

  store::Store& store_;
  WorkerRegistry& workers_;
  std::string admin_token_sha256_;
};

#undef APIM_DECLARE_CRUD

}  // namespace apim::controlplane

#pragma once
// The resources apimctl manages, as one table. Each entry holds what differs between resources:
// the command name, the message type, the key field, the table columns and the bound Management
// RPCs. Every command is written once, over this table.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/message.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "apim/v1/management.grpc.pb.h"
#include "cli/output.h"

namespace apim::cli {

using ManagementStub = apim::v1::Management::StubInterface;

// The five Management RPCs of one resource, over generic messages so callers need not know the
// resource's type. A ClientContext serves one call, so each call takes a fresh one. Responses are
// copied into `out`, which must be a message of the resource's type.
struct ResourceCalls {
  std::function<grpc::Status(ManagementStub&, grpc::ClientContext&,
                             const google::protobuf::Message& resource,
                             google::protobuf::Message& out)>
      create;
  std::function<grpc::Status(ManagementStub&, grpc::ClientContext&, const v1::GetRequest&,
                             google::protobuf::Message& out)>
      get;
  // Fetches one page: appends its resources to `items` and sets `next_page_token`.
  std::function<grpc::Status(ManagementStub&, grpc::ClientContext&, const v1::ListRequest&,
                             std::vector<std::unique_ptr<google::protobuf::Message>>& items,
                             std::string& next_page_token)>
      list;
  std::function<grpc::Status(
      ManagementStub&, grpc::ClientContext&, const google::protobuf::Message& resource,
      const google::protobuf::FieldMask& update_mask, google::protobuf::Message& out)>
      update;
  std::function<grpc::Status(ManagementStub&, grpc::ClientContext&, const v1::DeleteRequest&)>
      remove;
};

struct ResourceKind {
  std::string command;  // the resource word on the command line: "api"
  // The key of the resources' list in exported documents, as in List responses: "apis".
  std::string plural;
  std::string summary;                         // one line for --help
  const google::protobuf::Message* prototype;  // the resource message's default instance
  // The field that identifies a resource, "name" or "scope"; GetRequest and DeleteRequest carry
  // its value in their `name` field.
  std::string key_field;
  std::string key_help;  // what the positional NAME means for this resource
  std::vector<Column> columns;
  // A string field that `--file FILE` fills from a file ("-" is stdin); empty for none.
  std::string file_field{};
  ResourceCalls calls;
};

// All resources, in the order --help lists them. Resources refer only to kinds listed before
// them (a gateway names its tier; an API its gateways; a setting or policy its API), so creating
// in this order and deleting in reverse never refers to a resource that is not there.
const std::vector<ResourceKind>& ResourceKinds();

// Whether the server owns the field: etag, create_time, update_time, built_in, warnings, what a
// certificate says about itself (subject, names, dates, fingerprint, private_key_set) and whether
// a secret is stored (backend_tls.client_key_set, shared_state.has_password) are set by the
// server and ignored when a client sends them.
bool IsOutputOnly(const google::protobuf::FieldDescriptor& field);

// The table of `apimctl gateway workers`: one GatewayWorker per row.
const std::vector<Column>& GatewayWorkerColumns();

}  // namespace apim::cli

#include "cli/declarative.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "cli/document_shape.h"
#include "cli/proto_flags.h"
#include "common/str_cat.h"

namespace apim::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::DescriptorProto;
using google::protobuf::FieldDescriptor;
using google::protobuf::FieldDescriptorProto;
using google::protobuf::FileDescriptorProto;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr char kPackage[] = "apimctl.document";
constexpr int kApiVersionField = 1;  // the resource lists follow, one per kind in table order

// The most resources one List call returns.
constexpr uint32_t kPageSize = 1000;

// Values longer than this are named but not shown in `import` output.
constexpr size_t kLongestShownValue = 40;

// The document as two message types, so protobuf's own JSON printer and parser do the work: field
// order, proto3 JSON values, and parse errors that carry a path. ExportedDocument holds copies of
// the resource types without their output-only fields, so export leaves them out;
// ImportedDocument holds the resource types themselves, so import accepts and then drops them.
// Built once, over the generated pool.
class DocumentTypes {
 public:
  static const DocumentTypes& Get() {
    static const DocumentTypes types;
    return types;
  }

  std::unique_ptr<Message> NewExported() const {
    return std::unique_ptr<Message>(exported_->New());
  }
  std::unique_ptr<Message> NewImported() const {
    return std::unique_ptr<Message>(imported_->New());
  }

 private:
  DocumentTypes();

  DescriptorPool pool_{DescriptorPool::generated_pool()};
  google::protobuf::DynamicMessageFactory factory_{&pool_};
  const Message* exported_ = nullptr;
  const Message* imported_ = nullptr;
};

void AddField(DescriptorProto& message, const std::string& name, int number,
              FieldDescriptorProto::Type type, const std::string& type_name = "") {
  FieldDescriptorProto& field = *message.add_field();
  field.set_name(name);
  field.set_number(number);
  field.set_type(type);
  if (type == FieldDescriptorProto::TYPE_MESSAGE) {
    field.set_label(FieldDescriptorProto::LABEL_REPEATED);
    field.set_type_name(type_name);
  } else {
    field.set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  }
}

DocumentTypes::DocumentTypes() {
  FileDescriptorProto file;
  file.set_name("apimctl/document.proto");
  file.set_package(kPackage);
  file.set_syntax("proto3");
  DescriptorProto exported;
  exported.set_name("ExportedDocument");
  DescriptorProto imported;
  imported.set_name("ImportedDocument");
  for (DescriptorProto* document : {&exported, &imported}) {
    AddField(*document, "apiVersion", kApiVersionField, FieldDescriptorProto::TYPE_STRING);
  }

  std::set<std::string> dependencies;
  int number = kApiVersionField + 1;
  for (const ResourceKind& kind : ResourceKinds()) {
    const Descriptor& type = *kind.prototype->GetDescriptor();
    dependencies.insert(type.file()->name());
    DescriptorProto declared;
    type.CopyTo(&declared);
    declared.set_name("Declared" + type.name());
    declared.clear_field();
    for (int i = 0; i < type.field_count(); ++i) {
      const FieldDescriptor& field = *type.field(i);
      if (IsOutputOnly(field)) continue;
      field.CopyTo(declared.add_field());
      if (field.message_type() != nullptr)
        dependencies.insert(field.message_type()->file()->name());
      if (field.enum_type() != nullptr) dependencies.insert(field.enum_type()->file()->name());
    }
    *file.add_message_type() = std::move(declared);
    AddField(exported, kind.plural, number, FieldDescriptorProto::TYPE_MESSAGE,
             StrCat(".", kPackage, ".Declared", type.name()));
    AddField(imported, kind.plural, number, FieldDescriptorProto::TYPE_MESSAGE,
             "." + type.full_name());
    ++number;
  }
  *file.add_message_type() = std::move(exported);
  *file.add_message_type() = std::move(imported);
  for (const std::string& dependency : dependencies) file.add_dependency(dependency);

  const google::protobuf::FileDescriptor* built = pool_.BuildFile(file);
  if (built == nullptr) {
    // Only a change to the resource protos can get here, and every unit test builds the types.
    std::cerr << "apimctl: cannot build the document types from the resource protos\n";
    std::abort();
  }
  // Resource messages inside a document are then the generated classes, not dynamic copies.
  factory_.SetDelegateToGeneratedFactory(true);
  exported_ = factory_.GetPrototype(built->FindMessageTypeByName("ExportedDocument"));
  imported_ = factory_.GetPrototype(built->FindMessageTypeByName("ImportedDocument"));
}

std::string KeyOf(const ResourceKind& kind, const Message& resource) {
  const FieldDescriptor* key = resource.GetDescriptor()->FindFieldByName(kind.key_field);
  return key == nullptr ? "" : resource.GetReflection()->GetString(resource, key);
}

// A scalar value as compared and shown: strings as they are, enums as typed on the command line.
// `index` is -1 for a singular field.
std::string ScalarText(const Message& message, const FieldDescriptor& field, int index) {
  const Reflection& reflection = *message.GetReflection();
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    return index < 0 ? reflection.GetString(message, &field)
                     : reflection.GetRepeatedString(message, &field, index);
  }
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
    return EnumValueText(index < 0 ? *reflection.GetEnum(message, &field)
                                   : *reflection.GetRepeatedEnum(message, &field, index));
  }
  std::string text;
  google::protobuf::TextFormat::PrintFieldValueToString(message, &field, index, &text);
  return text;
}

// Equal but for the fields the server owns inside them (backend_tls.client_key_set,
// shared_state.has_password), which a document may leave out.
bool SameMessage(const Message& a, const Message& b) {
  google::protobuf::util::MessageDifferencer differencer;
  const Descriptor& type = *a.GetDescriptor();
  for (int i = 0; i < type.field_count(); ++i) {
    if (IsOutputOnly(*type.field(i))) differencer.IgnoreField(type.field(i));
  }
  return differencer.Compare(a, b);
}

bool SameElement(const Message& a, const Message& b, const FieldDescriptor& field, int index) {
  if (field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return ScalarText(a, field, index) == ScalarText(b, field, index);
  }
  const Reflection& ra = *a.GetReflection();
  const Reflection& rb = *b.GetReflection();
  return SameMessage(
      index < 0 ? ra.GetMessage(a, &field) : ra.GetRepeatedMessage(a, &field, index),
      index < 0 ? rb.GetMessage(b, &field) : rb.GetRepeatedMessage(b, &field, index));
}

bool SameValue(const Message& a, const Message& b, const FieldDescriptor& field) {
  const Reflection& ra = *a.GetReflection();
  const Reflection& rb = *b.GetReflection();
  if (field.is_repeated()) {
    const int size = ra.FieldSize(a, &field);
    if (size != rb.FieldSize(b, &field)) return false;
    for (int i = 0; i < size; ++i) {
      if (!SameElement(a, b, field, i)) return false;
    }
    return true;
  }
  if (field.has_presence() && ra.HasField(a, &field) != rb.HasField(b, &field)) return false;
  return SameElement(a, b, field, -1);
}

// A singular scalar as `import` shows it, or empty when it is not worth a line: "premium",
// "unset", "\"\"", "\"two words\"".
std::string ShownValue(const Message& message, const FieldDescriptor& field) {
  if (field.has_presence() && !message.GetReflection()->HasField(message, &field)) return "unset";
  std::string text = ScalarText(message, field, -1);
  if (text.size() > kLongestShownValue || text.find_first_of("\r\n") != std::string::npos) {
    return "";
  }
  if (field.cpp_type() != FieldDescriptor::CPPTYPE_STRING) return text;
  if (!text.empty() && text.find_first_of(" \t,()\"\\") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

// What import does with each resource; the counts make the summary line.
class Importer {
 public:
  Importer(const ImportOptions& options, ManagementStub& stub, const Connection& connection,
           std::ostream& out)
      : options_(options), stub_(stub), connection_(connection), out_(out) {}

  // Creates `desired`, or replaces the stored resource if it differs.
  grpc::Status Apply(const ResourceKind& kind, const Message& desired);
  // Deletes the resources of `kind` whose keys are not in `listed`; built-in tiers stay.
  grpc::Status Prune(const ResourceKind& kind, const std::set<std::string>& listed);
  void PrintSummary() const;
  // The call that failed, "update gateway edge", for the error message.
  const std::string& step() const { return step_; }

 private:
  void Print(std::string_view action, const ResourceKind& kind, std::string_view key,
             std::string_view detail = {}) {
    out_ << (options_.dry_run ? "would " : "") << action << ' ' << kind.command << ' ' << key;
    if (!detail.empty()) out_ << " (" << detail << ')';
    out_ << '\n';
  }

  const ImportOptions& options_;
  ManagementStub& stub_;
  const Connection& connection_;
  std::ostream& out_;
  std::string step_;
  int created_ = 0;
  int updated_ = 0;
  int deleted_ = 0;
  int unchanged_ = 0;
};

grpc::Status Importer::Apply(const ResourceKind& kind, const Message& desired) {
  const std::string key = KeyOf(kind, desired);
  step_ = StrCat("get ", kind.command, " ", key);
  v1::GetRequest get;
  get.set_name(key);
  std::unique_ptr<Message> current(kind.prototype->New());
  grpc::ClientContext get_context;
  PrepareContext(get_context, connection_);
  grpc::Status status = kind.calls.get(stub_, get_context, get, *current);

  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    step_ = StrCat("create ", kind.command, " ", key);
    if (!options_.dry_run) {
      std::unique_ptr<Message> created(kind.prototype->New());
      grpc::ClientContext context;
      PrepareContext(context, connection_);
      status = kind.calls.create(stub_, context, desired, *created);
      if (!status.ok()) return status;
    }
    Print("create", kind, key);
    ++created_;
    return grpc::Status::OK;
  }
  if (!status.ok()) return status;

  const std::vector<FieldChange> changes = ChangedFields(*current, desired);
  if (changes.empty()) {
    if (options_.verbose) out_ << "unchanged " << kind.command << ' ' << key << '\n';
    ++unchanged_;
    return grpc::Status::OK;
  }
  step_ = StrCat("update ", kind.command, " ", key);
  if (!options_.dry_run) {
    // A full replace (empty update_mask) carrying the etag just read: if someone changed the
    // resource since, the server refuses with ABORTED instead of losing their change.
    std::unique_ptr<Message> replacement(desired.New());
    replacement->CopyFrom(desired);
    const FieldDescriptor& etag = *replacement->GetDescriptor()->FindFieldByName("etag");
    replacement->GetReflection()->SetString(replacement.get(), &etag,
                                            current->GetReflection()->GetString(*current, &etag));
    std::unique_ptr<Message> updated(kind.prototype->New());
    grpc::ClientContext context;
    PrepareContext(context, connection_);
    status =
        kind.calls.update(stub_, context, *replacement, google::protobuf::FieldMask(), *updated);
    if (!status.ok()) return status;
  }
  Print("update", kind, key, DescribeChanges(changes));
  ++updated_;
  return grpc::Status::OK;
}

grpc::Status Importer::Prune(const ResourceKind& kind, const std::set<std::string>& listed) {
  step_ = StrCat("list ", kind.plural);
  std::vector<std::unique_ptr<Message>> stored;
  grpc::Status status = ListAll(kind, stub_, connection_, kPageSize, stored);
  if (!status.ok()) return status;
  for (const std::unique_ptr<Message>& resource : stored) {
    const std::string key = KeyOf(kind, *resource);
    if (listed.contains(key)) continue;
    const Descriptor& type = *resource->GetDescriptor();
    if (const FieldDescriptor* built_in = type.FindFieldByName("built_in");
        built_in != nullptr && resource->GetReflection()->GetBool(*resource, built_in)) {
      continue;
    }
    step_ = StrCat("delete ", kind.command, " ", key);
    if (!options_.dry_run) {
      v1::DeleteRequest request;
      request.set_name(key);
      request.set_etag(
          resource->GetReflection()->GetString(*resource, type.FindFieldByName("etag")));
      grpc::ClientContext context;
      PrepareContext(context, connection_);
      status = kind.calls.remove(stub_, context, request);
      if (!status.ok()) return status;
    }
    Print("delete", kind, key);
    ++deleted_;
  }
  return grpc::Status::OK;
}

void Importer::PrintSummary() const {
  out_ << created_ << " created, " << updated_ << " updated, " << deleted_ << " deleted, "
       << unchanged_ << " unchanged";
  if (options_.dry_run) out_ << " (dry run: nothing was written)";
  out_ << '\n';
}

}  // namespace

absl::StatusOr<Configuration> ParseConfiguration(std::string_view json) {
  std::unique_ptr<Message> document = DocumentTypes::Get().NewImported();
  if (absl::Status shape = CheckDocumentShape(json, *document->GetDescriptor()); !shape.ok()) {
    return shape;
  }
  // Unknown fields are errors: a misspelt field must not be dropped silently.
  google::protobuf::util::JsonParseOptions options;
  const google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(std::string(json), document.get(), options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(StrCat("invalid document: ", parsed.message().ToString()));
  }

  const Descriptor& type = *document->GetDescriptor();
  const Reflection& reflection = *document->GetReflection();
  const std::string version =
      reflection.GetString(*document, type.FindFieldByNumber(kApiVersionField));
  if (version != kApiVersion) {
    return absl::InvalidArgumentError(
        StrCat("apiVersion: expected \"", kApiVersion, "\", not \"", version, "\""));
  }

  Configuration configuration;
  for (const ResourceKind& kind : ResourceKinds()) {
    const FieldDescriptor& list = *type.FindFieldByName(kind.plural);
    std::vector<std::unique_ptr<Message>>& resources = configuration.resources.emplace_back();
    std::set<std::string> keys;
    for (int i = 0; i < reflection.FieldSize(*document, &list); ++i) {
      std::unique_ptr<Message>& resource = resources.emplace_back(kind.prototype->New());
      resource->CopyFrom(reflection.GetRepeatedMessage(*document, &list, i));
      ClearOutputOnly(*resource);
      const std::string key = KeyOf(kind, *resource);
      const std::string where = StrCat(kind.plural, "[", i, "]");
      if (key.empty()) {
        return absl::InvalidArgumentError(StrCat(where, ".", kind.key_field, ": is required"));
      }
      if (!keys.insert(key).second) {
        return absl::InvalidArgumentError(
            StrCat(where, ": ", kind.command, " \"", key, "\" is listed twice"));
      }
    }
  }
  return configuration;
}

std::string ConfigurationJson(const Configuration& configuration) {
  std::unique_ptr<Message> document = DocumentTypes::Get().NewExported();
  const Descriptor& type = *document->GetDescriptor();
  const Reflection& reflection = *document->GetReflection();
  reflection.SetString(document.get(), type.FindFieldByNumber(kApiVersionField),
                       std::string(kApiVersion));
  const std::vector<ResourceKind>& kinds = ResourceKinds();
  for (size_t i = 0; i < kinds.size() && i < configuration.resources.size(); ++i) {
    const FieldDescriptor& list = *type.FindFieldByName(kinds[i].plural);
    for (const std::unique_ptr<Message>& resource : configuration.resources[i]) {
      // The declared types share the resources' field numbers, so the wire form carries over.
      std::unique_ptr<Message> declared_only(resource->New());
      declared_only->CopyFrom(*resource);
      ClearOutputOnly(*declared_only);
      reflection.AddMessage(document.get(), &list)
          ->ParseFromString(declared_only->SerializeAsString());
    }
  }

  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  // A declarative file shows every setting, defaults included.
  options.always_print_primitive_fields = true;
  std::string json;
  const google::protobuf::util::Status printed =
      google::protobuf::util::MessageToJsonString(*document, &json, options);
  if (!printed.ok()) {
    // Only invalid UTF-8 fails, which the server does not store; say so rather than print half.
    std::cerr << "apimctl: cannot print the document: " << printed.message() << '\n';
    std::abort();
  }
  if (!json.ends_with('\n')) json += '\n';
  return json;
}

void ClearOutputOnly(Message& resource) {
  const Descriptor& type = *resource.GetDescriptor();
  for (int i = 0; i < type.field_count(); ++i) {
    if (IsOutputOnly(*type.field(i)))
      resource.GetReflection()->ClearField(&resource, type.field(i));
  }
}

std::vector<FieldChange> ChangedFields(const Message& current, const Message& desired) {
  std::vector<FieldChange> changes;
  const Descriptor& type = *desired.GetDescriptor();
  if (current.GetDescriptor() != &type) return changes;  // not two resources of one type
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    if (IsOutputOnly(field) || SameValue(current, desired, field)) continue;
    FieldChange& change = changes.emplace_back();
    change.field = field.name();
    if (field.is_repeated() || field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string before = ShownValue(current, field);
    const std::string after = ShownValue(desired, field);
    if (!before.empty() && !after.empty()) change.values = before + " -> " + after;
  }
  return changes;
}

std::string DescribeChanges(const std::vector<FieldChange>& changes) {
  std::string text;
  for (const FieldChange& change : changes) {
    if (!text.empty()) text += ", ";
    text += change.field;
    if (!change.values.empty()) text += ": " + change.values;
  }
  return text;
}

int Export(ManagementStub& stub, const Connection& connection, std::ostream& out,
           std::ostream& err) {
  Configuration configuration;
  for (const ResourceKind& kind : ResourceKinds()) {
    std::vector<std::unique_ptr<Message>>& resources = configuration.resources.emplace_back();
    const grpc::Status status = ListAll(kind, stub, connection, kPageSize, resources);
    if (!status.ok()) return ReportFailedCall(status, err, StrCat("list ", kind.plural));
  }
  out << ConfigurationJson(configuration);
  return 0;
}

int Import(const Configuration& configuration, const ImportOptions& options, ManagementStub& stub,
           const Connection& connection, std::ostream& out, std::ostream& err) {
  const std::vector<ResourceKind>& kinds = ResourceKinds();
  Importer importer(options, stub, connection, out);
  for (size_t i = 0; i < kinds.size() && i < configuration.resources.size(); ++i) {
    for (const std::unique_ptr<Message>& resource : configuration.resources[i]) {
      const grpc::Status status = importer.Apply(kinds[i], *resource);
      if (!status.ok()) return ReportFailedCall(status, err, importer.step());
    }
  }
  if (options.prune) {
    // Users before what they use: policies and settings name APIs, APIs name gateways, gateways
    // name tiers.
    for (size_t i = kinds.size(); i-- > 0;) {
      std::set<std::string> listed;
      if (i < configuration.resources.size()) {
        for (const std::unique_ptr<Message>& resource : configuration.resources[i]) {
          listed.insert(KeyOf(kinds[i], *resource));
        }
      }
      const grpc::Status status = importer.Prune(kinds[i], listed);
      if (!status.ok()) return ReportFailedCall(status, err, importer.step());
    }
  }
  importer.PrintSummary();
  return 0;
}

}  // namespace apim::cli

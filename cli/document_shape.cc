#include "cli/document_shape.h"

#include <cassert>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/str_cat.h"

namespace apim::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// The JSON shape of a value, and of what a place in a document takes: kAny where the shape is left
// to protobuf's parser.
enum class Shape { kObject, kArray, kScalar, kNull, kAny };

// What a place in a document takes: the message an object there holds, or the field an array's
// items or a scalar belong to.
struct Slot {
  Shape shape = Shape::kAny;
  const Descriptor* type = nullptr;        // kObject
  const FieldDescriptor* field = nullptr;  // kArray and kScalar
};

// The value of `field`, or with `item` one item of its list. Unknown fields are kAny: the parser
// refuses them with their path. So are maps and well-known types (a Timestamp is a string), whose
// JSON shapes are not their fields'; the parser reads those.
Slot SlotOf(const FieldDescriptor* field, bool item) {
  if (field == nullptr || field->is_map()) return {};
  if (field->is_repeated() && !item) return {Shape::kArray, nullptr, field};
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return {Shape::kScalar, nullptr, field};
  }
  if (field->message_type()->file()->package() == "google.protobuf") return {};
  return {Shape::kObject, field->message_type(), nullptr};
}

// The field a key names: by its proto name or, as protobuf's parser also takes, its JSON name.
const FieldDescriptor* FieldNamed(const Descriptor& type, const std::string& key) {
  if (const FieldDescriptor* field = type.FindFieldByName(key)) return field;
  for (int i = 0; i < type.field_count(); ++i) {
    if (type.field(i)->json_name() == key) return type.field(i);
  }
  return nullptr;
}

// "an object", "a string": what `slot` takes, for errors.
std::string_view ShapeName(const Slot& slot) {
  switch (slot.shape) {
    case Shape::kObject:
      return "an object";
    case Shape::kArray:
      return "an array";
    default:
      switch (slot.field->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
        case FieldDescriptor::CPPTYPE_ENUM:
          return "a string";
        case FieldDescriptor::CPPTYPE_BOOL:
          return "a boolean";
        default:
          return "a number";
      }
  }
}

// Reads a document's JSON and checks the shape of every value against the document type. The
// first value out of place stops the reading.
class ShapeChecker final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit ShapeChecker(const Descriptor& document) : document_(document) {}

  // OK, or INVALID_ARGUMENT naming the first place that is wrong.
  const absl::Status& status() const { return status_; }

  bool null() override { return Begin(Shape::kNull, "null"); }
  bool boolean(bool) override { return Begin(Shape::kScalar, "a boolean"); }
  bool number_integer(number_integer_t) override { return Begin(Shape::kScalar, "a number"); }
  bool number_unsigned(number_unsigned_t) override { return Begin(Shape::kScalar, "a number"); }
  bool number_float(number_float_t, const string_t&) override {
    return Begin(Shape::kScalar, "a number");
  }
  bool string(string_t&) override { return Begin(Shape::kScalar, "a string"); }
  bool binary(binary_t&) override { return Begin(Shape::kScalar, "binary data"); }  // not in JSON
  bool start_object(std::size_t) override { return Begin(Shape::kObject, "an object"); }
  bool key(string_t& key) override;
  bool end_object() override { return End(); }
  bool start_array(std::size_t) override { return Begin(Shape::kArray, "an array"); }
  bool end_array() override { return End(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::json::exception& error) override;

 private:
  // An object or array whose values are being read.
  struct Container {
    Shape shape;  // kObject or kArray
    Slot slot;
    std::string where;             // "apis[0]"; empty for the document
    std::set<std::string> keys{};  // object: the keys so far
    std::string key{};             // object: the key of the value being read
    int index = 0;                 // array: the index of the value being read
  };

  // The place of the value being read: "apis[0].gateways"; empty for the document.
  std::string Where() const;
  // What that place takes.
  Slot Expected() const;
  // A value of `shape` starts; `shown` names it in the error.
  bool Begin(Shape shape, std::string_view shown);
  bool End();
  bool Refuse(std::string message) {
    status_ = absl::InvalidArgumentError(std::move(message));
    return false;
  }

  const Descriptor& document_;
  std::vector<Container> open_;
  absl::Status status_;
};

std::string ShapeChecker::Where() const {
  if (open_.empty()) return "";
  const Container& in = open_.back();
  if (in.shape == Shape::kArray) return StrCat(in.where, "[", in.index, "]");
  return in.where.empty() ? in.key : StrCat(in.where, ".", in.key);
}

Slot ShapeChecker::Expected() const {
  if (open_.empty()) return {Shape::kObject, &document_, nullptr};
  const Container& in = open_.back();
  if (in.slot.shape == Shape::kArray) return SlotOf(in.slot.field, /*item=*/true);
  if (in.slot.shape == Shape::kObject) {
    return SlotOf(FieldNamed(*in.slot.type, in.key), /*item=*/false);
  }
  return {};  // inside a kAny value
}

bool ShapeChecker::Begin(Shape shape, std::string_view shown) {
  const Slot expected = Expected();
  if (expected.shape != Shape::kAny && expected.shape != shape) {
    const std::string where = Where();
    return Refuse(StrCat(where.empty() ? "document" : where, ": expected ", ShapeName(expected),
                         ", got ", shown));
  }
  if (shape == Shape::kObject || shape == Shape::kArray) {
    open_.push_back({shape, expected, Where()});
    return true;
  }
  if (!open_.empty()) ++open_.back().index;
  return true;
}

bool ShapeChecker::End() {
  assert(!open_.empty());  // the parser pairs every end with its start
  open_.pop_back();
  if (!open_.empty()) ++open_.back().index;
  return true;
}

bool ShapeChecker::key(string_t& key) {
  assert(!open_.empty() && open_.back().shape == Shape::kObject);
  Container& in = open_.back();
  in.key = key;
  if (!in.keys.insert(key).second) return Refuse(StrCat(Where(), ": given twice"));
  return true;
}

bool ShapeChecker::parse_error(std::size_t, const std::string&,
                               const nlohmann::json::exception& error) {
  // "[json.exception.parse_error.101] parse error at line 1, column 2: ...": the part from
  // "parse error" on is for people.
  std::string_view message = error.what();
  if (const size_t end_of_id = message.find("] "); end_of_id != std::string_view::npos) {
    message.remove_prefix(end_of_id + 2);
  }
  return Refuse(StrCat("invalid document: ", message));
}

}  // namespace

absl::Status CheckDocumentShape(std::string_view json, const Descriptor& document) {
  ShapeChecker checker(document);
  nlohmann::json::sax_parse(json, &checker);
  return checker.status();
}

}  // namespace apim::cli

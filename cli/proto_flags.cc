#include "cli/proto_flags.h"

#include <google/protobuf/message.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>

namespace apim::cli {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lowercase(a) == Lowercase(b);
}

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Enum values are named with the enum's name as prefix, by protobuf convention:
// Verbosity -> VERBOSITY_, CacheMode -> CACHE_MODE_.
std::string EnumValuePrefix(const EnumDescriptor& type) {
  std::string prefix;
  for (char c : type.name()) {
    if (std::isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix += '_';
    prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return prefix + "_";
}

const EnumValueDescriptor* FindEnumValue(const EnumDescriptor& type, std::string_view text) {
  for (int i = 0; i < type.value_count(); ++i) {
    const EnumValueDescriptor* value = type.value(i);
    if (EqualsIgnoringCase(value->name(), text) ||
        EqualsIgnoringCase(EnumValueText(*value), text)) {
      return value;
    }
  }
  return nullptr;
}

std::string EnumValueList(const EnumDescriptor& type, std::string_view separator) {
  std::string list;
  for (int i = 0; i < type.value_count(); ++i) {
    if (i > 0) list += separator;
    list += EnumValueText(*type.value(i));
  }
  return list;
}

std::optional<bool> ParseBool(std::string_view text) {
  const std::string lower = Lowercase(text);
  if (lower.empty() || lower == "true" || lower == "yes" || lower == "on" || lower == "1") {
    return true;
  }
  if (lower == "false" || lower == "no" || lower == "off" || lower == "0") return false;
  return std::nullopt;
}

template <typename Integer>
std::optional<Integer> ParseInteger(std::string_view text) {
  Integer value{};
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  return value;
}

// Sets a singular field or appends to a repeated one, whichever `field` is.
template <typename T>
void Store(Message& message, const FieldDescriptor& field, T value,
           void (Reflection::*set)(Message*, const FieldDescriptor*, T) const,
           void (Reflection::*add)(Message*, const FieldDescriptor*, T) const) {
  (message.GetReflection()->*(field.is_repeated() ? add : set))(&message, &field, std::move(value));
}

template <typename Integer>
std::string StoreInteger(Message& message, const FieldDescriptor& field, std::string_view text,
                         void (Reflection::*set)(Message*, const FieldDescriptor*, Integer) const,
                         void (Reflection::*add)(Message*, const FieldDescriptor*, Integer) const) {
  std::optional<Integer> value = ParseInteger<Integer>(text);
  if (!value) {
    return Quoted(text) + " is not a whole number from " +
           std::to_string(std::numeric_limits<Integer>::min()) + " to " +
           std::to_string(std::numeric_limits<Integer>::max());
  }
  Store(message, field, *value, set, add);
  return {};
}

std::string StoreOne(Message& message, const FieldDescriptor& field, std::string_view text) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      Store(message, field, std::string(text), &Reflection::SetString, &Reflection::AddString);
      return {};
    case FieldDescriptor::CPPTYPE_BOOL: {
      std::optional<bool> value = ParseBool(text);
      if (!value) return Quoted(text) + " is not true or false";
      Store(message, field, *value, &Reflection::SetBool, &Reflection::AddBool);
      return {};
    }
    case FieldDescriptor::CPPTYPE_UINT32:
      return StoreInteger(message, field, text, &Reflection::SetUInt32, &Reflection::AddUInt32);
    case FieldDescriptor::CPPTYPE_UINT64:
      return StoreInteger(message, field, text, &Reflection::SetUInt64, &Reflection::AddUInt64);
    case FieldDescriptor::CPPTYPE_INT32:
      return StoreInteger(message, field, text, &Reflection::SetInt32, &Reflection::AddInt32);
    case FieldDescriptor::CPPTYPE_INT64:
      return StoreInteger(message, field, text, &Reflection::SetInt64, &Reflection::AddInt64);
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumValueDescriptor* value = FindEnumValue(*field.enum_type(), text);
      if (value == nullptr) {
        return Quoted(text) + " is not a " + Lowercase(field.enum_type()->name()) +
               "; valid values: " + EnumValueList(*field.enum_type(), ", ");
      }
      Store(message, field, value, &Reflection::SetEnum, &Reflection::AddEnum);
      return {};
    }
    default:
      return "field " + field.name() + " cannot be set from the command line";
  }
}

bool IsSettableFromText(const FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
    case FieldDescriptor::CPPTYPE_BOOL:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_ENUM:
      return true;
    default:
      return false;
  }
}

std::string TypeName(const FieldDescriptor& field) {
  std::string name;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_BOOL:
      name = "BOOL";
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      name = "UINT";
      break;
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
      name = "INT";
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      name = "{" + EnumValueList(*field.enum_type(), ",") + "}";
      break;
    default:
      name = "TEXT";
  }
  if (field.is_repeated()) return name + "[," + name + "...]";
  // A bool's value is optional: --sse alone means true.
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_BOOL) return "[" + name + "]";
  return name;
}

// The proto files' comments are not compiled into the descriptors, so the help text can only say
// what the field's type implies.
std::string Description(const FieldDescriptor& field) {
  if (field.is_repeated()) return "repeat the flag or separate with commas; \"\" clears the list";
  std::string description;
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
    description = "alone means true";
  }
  if (field.has_presence()) {
    if (!description.empty()) description += "; ";
    description += "optional: unset means the server default";
  }
  return description;
}

}  // namespace

std::string FlagName(const FieldDescriptor& field) {
  std::string name = "--" + field.name();
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

std::string EnumValueText(const EnumValueDescriptor& value) {
  std::string_view name = value.name();
  const std::string prefix = EnumValuePrefix(*value.type());
  if (name.starts_with(prefix)) name.remove_prefix(prefix.size());
  return Lowercase(name);
}

std::string SetFieldFromText(Message& message, const FieldDescriptor& field,
                             std::string_view text) {
  if (!field.is_repeated()) return StoreOne(message, field, text);
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    if (std::string error = StoreOne(message, field, item); !error.empty()) return error;
  }
  return {};
}

MessageFlags::MessageFlags(CLI::App& app, const google::protobuf::Descriptor& descriptor,
                           const std::set<std::string>& skipped_fields) {
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(&descriptor);
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor* field = descriptor.field(i);
    if (skipped_fields.contains(field->name()) || field->is_map() || !IsSettableFromText(*field)) {
      continue;
    }
    CLI::Option* option = app.add_option(FlagName(*field));
    option->description(Description(*field));
    option->type_name(TypeName(*field));
    // Setting the value on a scratch message is the one definition of what text is valid.
    option->check(CLI::Validator(
        [prototype, field](std::string& text) {
          std::unique_ptr<Message> scratch(prototype->New());
          return SetFieldFromText(*scratch, *field, text);
        },
        ""));
    if (field->is_repeated()) {
      option->take_all();
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
      option->expected(0,
                       1);  // given alone, the result is "", which SetFieldFromText reads as true
    }
    options_.emplace_back(field, option);
  }
}

std::vector<std::string> MessageFlags::Apply(Message& message) const {
  std::vector<std::string> given;
  for (const auto& [field, option] : options_) {
    if (option->count() == 0) continue;
    message.GetReflection()->ClearField(&message, field);
    // The validator accepted every result during parsing, so setting them cannot fail here.
    for (const std::string& text : option->results()) SetFieldFromText(message, *field, text);
    given.push_back(field->name());
  }
  return given;
}

CLI::Option* MessageFlags::OptionFor(std::string_view field_name) const {
  for (const auto& [field, option] : options_) {
    if (field->name() == field_name) return option;
  }
  return nullptr;
}

}  // namespace apim::cli

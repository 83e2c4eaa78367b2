#include "cli/output.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <sstream>
#include <string_view>

#include "cli/proto_flags.h"
#include "common/sha256.h"
#include "common/str_cat.h"

namespace apim::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr std::string_view kNoValue = "-";
constexpr std::string_view kColumnGap = "  ";
// Text longer than this is shown as its size where a cell lists several fields.
constexpr size_t kLongestCellValue = 64;

// `index` is -1 for a singular field.
std::string FieldValueText(const Message& message, const FieldDescriptor& field, int index) {
  const Reflection& reflection = *message.GetReflection();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return index < 0 ? reflection.GetString(message, &field)
                       : reflection.GetRepeatedString(message, &field, index);
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumValueText(index < 0 ? *reflection.GetEnum(message, &field)
                                     : *reflection.GetRepeatedEnum(message, &field, index));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (field.message_type() == google::protobuf::Timestamp::descriptor()) {
        google::protobuf::Timestamp time;
        time.CopyFrom(index < 0 ? reflection.GetMessage(message, &field)
                                : reflection.GetRepeatedMessage(message, &field, index));
        time.set_nanos(0);  // seconds are enough for people, and keep the column narrow
        return google::protobuf::util::TimeUtil::ToString(time);
      }
      [[fallthrough]];
    default: {
      std::string text;
      google::protobuf::TextFormat::PrintFieldValueToString(message, &field, index, &text);
      return text;
    }
  }
}

// "redis_address=redis.internal:6379 tls=true": the fields of `message` that are set, in
// declaration order, with text too long for a cell, or on several lines, as its size.
std::string SetFieldsText(const Message& message) {
  std::vector<const FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  std::string text;
  for (const FieldDescriptor* field : fields) {
    if (field->is_repeated() || field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) continue;
    std::string value = FieldValueText(message, *field, -1);
    if (value.size() > kLongestCellValue || value.find_first_of("\r\n") != std::string::npos) {
      value = StrCat("(", value.size(), " B)");
    }
    StrAppendTo(text, text.empty() ? "" : " ", field->name(), "=", value);
  }
  return text;
}

std::string CellText(const Message& row, const Column& column) {
  const Message* message = &row;
  const FieldDescriptor* field = nullptr;
  std::string_view path = column.field_path;
  while (true) {
    const size_t dot = path.find('.');
    field = message->GetDescriptor()->FindFieldByName(std::string(path.substr(0, dot)));
    if (field == nullptr) return "?";  // a misnamed column; the unit test checks every table
    if (dot == std::string_view::npos) break;
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) return "?";
    message = &message->GetReflection()->GetMessage(*message, field);
    path.remove_prefix(dot + 1);
  }

  const Reflection& reflection = *message->GetReflection();
  if (column.show == Column::Show::kByteSize &&
      field->cpp_type() == FieldDescriptor::CPPTYPE_STRING && !field->is_repeated()) {
    return std::to_string(reflection.GetString(*message, field).size());
  }
  std::string text;
  if (column.show == Column::Show::kFirstField &&
      field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && field->is_repeated()) {
    const FieldDescriptor& first = *field->message_type()->field(0);
    for (int i = 0; i < reflection.FieldSize(*message, field); ++i) {
      if (i > 0) text += ',';
      text += FieldValueText(reflection.GetRepeatedMessage(*message, field, i), first, -1);
    }
  } else if (column.show == Column::Show::kSetFields &&
             field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated()) {
    text = SetFieldsText(reflection.GetMessage(*message, field));
  } else if (field->is_repeated()) {
    for (int i = 0; i < reflection.FieldSize(*message, field); ++i) {
      if (i > 0) text += ',';
      text += FieldValueText(*message, *field, i);
    }
  } else if (!field->has_presence() || reflection.HasField(*message, field)) {
    text = FieldValueText(*message, *field, -1);
  }
  if (text.empty()) return std::string(kNoValue);
  return EscapeControlCharacters(text);
}

// Width on a terminal, counting each UTF-8 sequence as one column.
size_t DisplayWidth(std::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

void PrintRow(const std::vector<std::string>& cells, const std::vector<size_t>& widths,
              std::ostream& out) {
  for (size_t i = 0; i < cells.size(); ++i) {
    out << cells[i];
    if (i + 1 < cells.size()) {
      out << std::string(widths[i] - DisplayWidth(cells[i]), ' ') << kColumnGap;
    }
  }
  out << '\n';
}

std::string JsonText(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  // Scripts read every field, so zeros, false and empty values are printed too.
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    // Only an Any of an unknown type or invalid UTF-8 fails, and resources hold neither; still,
    // show the data rather than nothing.
    return message.ShortDebugString() + "\n";
  }
  if (!json.ends_with('\n')) json += '\n';
  return json;
}

}  // namespace

std::string EscapeControlCharacters(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const unsigned char next = i + 1 < text.size() ? text[i + 1] : 0;
    if (byte < 0x20 || byte == 0x7F) {
      StrAppendTo(escaped, "\\x", HexEncode(text.substr(i, 1)));
    } else if (byte == 0xC2 && next >= 0x80 && next <= 0x9F) {
      StrAppendTo(escaped, "\\u00", HexEncode(text.substr(i + 1, 1)));
      ++i;
    } else {
      escaped += text[i];
    }
  }
  return escaped;
}

void PrintTable(const std::vector<Column>& columns, const std::vector<const Message*>& rows,
                std::ostream& out) {
  std::vector<std::vector<std::string>> lines;
  lines.reserve(rows.size() + 1);
  std::vector<std::string>& header = lines.emplace_back();
  for (const Column& column : columns) header.push_back(column.header);
  for (const Message* row : rows) {
    std::vector<std::string>& cells = lines.emplace_back();
    for (const Column& column : columns) cells.push_back(CellText(*row, column));
  }

  std::vector<size_t> widths(columns.size(), 0);
  for (const std::vector<std::string>& cells : lines) {
    for (size_t i = 0; i < cells.size(); ++i)
      widths[i] = std::max(widths[i], DisplayWidth(cells[i]));
  }
  for (const std::vector<std::string>& cells : lines) PrintRow(cells, widths, out);
}

void PrintJson(const Message& message, std::ostream& out) { out << JsonText(message); }

void PrintJsonArray(const std::vector<const Message*>& messages, std::ostream& out) {
  if (messages.empty()) {
    out << "[]\n";
    return;
  }
  out << "[\n";
  for (size_t i = 0; i < messages.size(); ++i) {
    std::istringstream lines(JsonText(*messages[i]));
    std::string line;
    bool first = true;
    while (std::getline(lines, line)) {
      if (!first) out << '\n';
      out << "  " << line;
      first = false;
    }
    out << (i + 1 < messages.size() ? ",\n" : "\n");
  }
  out << "]\n";
}

}  // namespace apim::cli

#pragma once
// Command-line options derived from a protobuf message type, so every resource gets its flags from
// its descriptor instead of from hand-written per-resource code.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <CLI/App.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace apim::cli {

// Registers one CLI11 option per field of a message type, named after the field
// (`backend_url` becomes `--backend-url`), and after parsing copies the options that were given
// into a message. Supports string, integer, bool and enum fields, singular or repeated; message
// fields are not settable from flags and get no option.
//
// Values are checked while CLI11 parses, so a bad value is a CLI11 usage error. `app` must
// outlive this object.
class MessageFlags {
 public:
  MessageFlags(CLI::App& app, const google::protobuf::Descriptor& descriptor,
               const std::set<std::string>& skipped_fields);

  // Call after a successful parse. Sets every field whose option was given (a repeated field is
  // replaced, not appended to) and returns those fields' names in declaration order, ready to be
  // used as update_mask paths.
  std::vector<std::string> Apply(google::protobuf::Message& message) const;

  // The option registered for `field_name`, or nullptr if the field got none.
  CLI::Option* OptionFor(std::string_view field_name) const;

 private:
  std::vector<std::pair<const google::protobuf::FieldDescriptor*, CLI::Option*>> options_;
};

// The option name for a field: "--" followed by the field name with underscores as dashes.
std::string FlagName(const google::protobuf::FieldDescriptor& field);

// Sets `field` of `message` from command-line text. Repeated fields get one element per
// comma-separated, non-empty item (added to what is there). Bools accept true/false, yes/no,
// on/off, 1/0, and empty text as true (the flag given alone). Enums accept a value name
// case-insensitively, with or without the enum's prefix ("error" for VERBOSITY_ERROR). Returns an
// empty string on success, otherwise what is wrong with the text.
std::string SetFieldFromText(google::protobuf::Message& message,
                             const google::protobuf::FieldDescriptor& field, std::string_view text);

// An enum value's name as typed on the command line and shown in tables: lowercase, without the
// enum's prefix (VERBOSITY_ERROR prints as "error").
std::string EnumValueText(const google::protobuf::EnumValueDescriptor& value);

}  // namespace apim::cli

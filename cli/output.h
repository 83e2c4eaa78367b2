#pragma once
// How apimctl prints resources: an aligned table for people, JSON for scripts.

#include <google/protobuf/message.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace apim::cli {

// One table column: its header and the field of the row's message it shows, read by reflection.
struct Column {
  enum class Show {
    kValue,     // the field's value
    kByteSize,  // the length in bytes of a string field, for fields too long to show
    // of each message of a repeated message field, its first field (a gateway's hostnames)
    kFirstField,
    // of a singular message field, each field that is set, as "name=value" separated by spaces
    // (a gateway's shared state); long or multi-line text as its size: "ca_certificate=(1151 B)"
    kSetFields,
  };

  std::string header;
  std::string field_path;  // a field name, or a dotted path into nested messages
  Show show = Show::kValue;
};

// `text` with each control character as a visible escape: C0 and DEL as "\x1b", C1 (U+0080 to
// U+009F, UTF-8 0xC2 0x80..0x9F) as "\u009b". Text from the server (stored names, messages that
// quote them) must not reach the terminal as a sequence that moves the cursor, recolours or
// retitles it; nor may a line break or tab break a table's alignment.
std::string EscapeControlCharacters(std::string_view text);

// Prints a header line and one line per row, each column padded to its widest cell and separated
// by two spaces. Unset optional fields, empty strings and empty lists show "-"; enums show as
// typed on the command line ("error"); timestamps in RFC 3339 ("2026-01-02T03:04:05Z"); repeated
// fields are joined with commas. Control characters in cells, line breaks and tabs among them, show
// as escapes ("\x1b", "\u009b"), so stored text cannot drive the terminal.
void PrintTable(const std::vector<Column>& columns,
                const std::vector<const google::protobuf::Message*>& rows, std::ostream& out);

// Prints `message` as indented JSON with proto field names (path_prefix, not pathPrefix).
void PrintJson(const google::protobuf::Message& message, std::ostream& out);

// Prints `messages` as a JSON array of objects formatted as PrintJson does.
void PrintJsonArray(const std::vector<const google::protobuf::Message*>& messages,
                    std::ostream& out);

}  // namespace apim::cli

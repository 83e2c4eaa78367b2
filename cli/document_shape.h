#pragma once
// The shape of an `apimctl import` document, checked before protobuf's JSON parser reads it. That
// parser reads [[]] and [null] in a list as no items, null as an empty list, a lone object as a
// list of one, a key given twice as both values merged, and allows a trailing comma; so a
// malformed document could read as "no APIs", and `import --prune` delete them all.

#include <google/protobuf/descriptor.h>

#include <string_view>

#include "absl/status/status.h"

namespace apim::cli {

// OK, or INVALID_ARGUMENT naming the first value out of place ("apis[0]: expected an object, got
// an array", "apis: given twice") or the syntax error ("invalid document: parse error at line 1,
// column 2: ..."). Unknown fields are left to protobuf's parser, which names them.
absl::Status CheckDocumentShape(std::string_view json,
                                const google::protobuf::Descriptor& document);

}  // namespace apim::cli

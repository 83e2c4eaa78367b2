#pragma once
// Declarative configuration: every resource in one JSON document that `apimctl export` prints and
// `apimctl import` makes the server match, like `kubectl apply`.
//
//   {"apiVersion": "apim/v1", "tiers": [...], "gateways": [...], "apis": [...],
//    "diagnostic_settings": [...], "cache_settings": [...], "policies": [...]}
//
// Each list holds resources in the protobuf JSON form with proto field names, without the fields
// the server owns (etag, timestamps, built_in, warnings). Parsing, printing and comparing need no
// server; Export and Import make the calls.

#include <google/protobuf/message.h>

#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/connection.h"
#include "cli/resource_kinds.h"

namespace apim::cli {

inline constexpr std::string_view kApiVersion = "apim/v1";

// The resources of a document. resources[i] holds resources of ResourceKinds()[i], in document
// order, with their output-only fields cleared.
struct Configuration {
  std::vector<std::vector<std::unique_ptr<google::protobuf::Message>>> resources;
};

// Parses a document. Output-only fields are accepted and dropped, so resources copied from
// `apimctl ... get -o json` may be pasted in. INVALID_ARGUMENT names what is wrong: malformed
// JSON (with its line and column), a value of the wrong shape ("apis[0]: expected an object, got
// an array", "apis: expected an array, got null"), a key given twice in one object, an unknown
// field or bad value (with its path: "(apis[0].timeout_seconds)"), a wrong apiVersion, a resource
// without its name or scope, or one listed twice.
absl::StatusOr<Configuration> ParseConfiguration(std::string_view json);

// The document for `configuration`: indented, keys in the order above and fields in declaration
// order, every field shown (zeros and empty lists too; unset optional fields are left out).
std::string ConfigurationJson(const Configuration& configuration);

// Clears the fields IsOutputOnly names.
void ClearOutputOnly(google::protobuf::Message& resource);

// One field that differs between the stored resource and the declared one.
struct FieldChange {
  std::string field;
  // "standard -> premium" for short single-line values; empty for lists, nested messages and
  // long or multi-line text (a policy's XML), where the name alone is shown.
  std::string values;
};

// The fields, in declaration order, whose values differ between two resources of one type (none
// when the types differ); output-only fields are ignored, those of nested messages too
// (shared_state.has_password). An optional field that is unset differs from one set to zero. A
// secret is never read back, so a document that carries one (a Redis password) differs from the
// stored resource every time, and import sends it again.
std::vector<FieldChange> ChangedFields(const google::protobuf::Message& current,
                                       const google::protobuf::Message& desired);

// "tier: standard -> premium, gateways": the changes as `import` prints them.
std::string DescribeChanges(const std::vector<FieldChange>& changes);

// Prints the document of every resource on the server to `out`. Returns 0, or the exit code of
// the first failed call after reporting it to `err`.
int Export(ManagementStub& stub, const Connection& connection, std::ostream& out,
           std::ostream& err);

struct ImportOptions {
  bool dry_run = false;  // read only, and print what would change prefixed "would "
  bool prune = false;    // also delete what the document does not list, but not built-in tiers
  bool verbose = false;  // also print "unchanged KIND KEY"
};

// Makes the server match `configuration`: creates what is missing and replaces what differs (with
// the etag just read, so a concurrent change fails with ABORTED), kind by kind in ResourceKinds()
// order; with `prune`, then deletes what is not listed in reverse order. Prints one line per
// action ("update gateway edge (tier: standard -> premium)") and a summary line to `out`. The
// first failed call stops the import and is reported to `err`; its code is returned.
int Import(const Configuration& configuration, const ImportOptions& options, ManagementStub& stub,
           const Connection& connection, std::ostream& out, std::ostream& err);

}  // namespace apim::cli

#pragma once
// The apimctl command line: `apimctl [global options] <resource> <verb> [NAME] [flags]`, plus
// `apimctl export` and `apimctl import FILE` over all resources at once (cli/declarative.h).
// ParseCommandLine turns arguments into a Command without touching the network, so the grammar is
// testable on its own; RunCommand makes the Command's calls and prints the result.

#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/message.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/connection.h"
#include "cli/declarative.h"
#include "cli/resource_kinds.h"

namespace apim::cli {

// Exit codes besides 0 and the gRPC status code (1-16) of a failed call.
inline constexpr int kExitUsage = 64;       // sysexits' EX_USAGE
inline constexpr int kExitDataError = 65;   // EX_DATAERR: the file given to import is malformed
inline constexpr int kExitNoInput = 66;     // EX_NOINPUT: --token-file or --file cannot be read
inline constexpr int kExitCantCreate = 73;  // EX_CANTCREAT: --token-out cannot be written

// Every resource has the five CRUD verbs; gateways also have kToken (RotateGatewayToken) and
// kWorkers (ListGatewayWorkers). kExport and kImport work on every resource and have no kind.
// Policies also have kSet (create or replace); subscriptions kRegenerateKey.
enum class Verb {
  kCreate,
  kGet,
  kList,
  kUpdate,
  kDelete,
  kToken,
  kWorkers,
  kSet,
  kRegenerateKey,
  kExport,
  kImport
};
enum class OutputFormat { kTable, kJson };

// One command line, resolved: the call to make and how to print its result.
struct Command {
  const ResourceKind* kind = nullptr;  // null for export and import
  Verb verb = Verb::kGet;
  std::string key;  // the NAME (or SCOPE) argument; empty for list
  // create and update: the resource built from the flags, key and etag included.
  std::unique_ptr<google::protobuf::Message> resource;
  // update: exactly the fields given on the command line, so nothing else changes.
  google::protobuf::FieldMask update_mask;
  std::string etag;          // delete: the expected etag, or empty
  uint32_t page_size = 500;  // list: resources asked for per List call
  // token: the file to write the new token to (mode 0600) instead of printing it; empty for none.
  std::string token_out;
  std::string which_key = "primary";  // regenerate-key: primary or secondary
  // import: the parsed file and how to apply it.
  Configuration configuration;
  ImportOptions import_options;
  OutputFormat output = OutputFormat::kTable;
  Connection connection;
};

// A command to run, or, for --help and usage errors, text to print and the exit code.
struct ParsedCommandLine {
  std::optional<Command> command;
  int exit_code = 0;
  std::string out;  // for stdout: help
  std::string err;  // for stderr: what was wrong
};

// Parses the arguments that follow the program name. Also reads APIM_SERVER and APIM_TOKEN from
// the environment and the files named by --token-file, --file and import's FILE; a FILE that is
// not a valid document exits with kExitDataError.
ParsedCommandLine ParseCommandLine(const std::vector<std::string>& args);

// Makes the command's calls on `stub` and prints the result to `out`, or the server's error to
// `err` as "apimctl: CODE_NAME: message". Returns 0, or the failed call's gRPC status code.
int RunCommand(const Command& command, ManagementStub& stub, std::ostream& out, std::ostream& err);

}  // namespace apim::cli

#include "cli/commands.h"

#include <fcntl.h>
#include <grpcpp/client_context.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/backend_tls_flags.h"
#include "cli/certificate_flags.h"
#include "cli/output.h"
#include "cli/proto_flags.h"
#include "cli/shared_state_flags.h"
#include "common/files.h"

namespace apim::cli {
namespace {

using google::protobuf::Message;

constexpr const char* kDescription = "Command-line client of the API gateway's control plane.";

constexpr const char* kFooter = R"footer(In full: apimctl [OPTIONS] <resource> <verb> [NAME] [flags]
     or: apimctl [OPTIONS] export
     or: apimctl [OPTIONS] import FILE [--dry-run] [--prune] [-v]
Every resource has five verbs:
  create NAME [flags]   create from the flags
  get NAME              show one
  list                  show all
  update NAME [flags]   change only the fields given (--etag E: only if unchanged since)
  delete NAME           delete (--etag E: only if unchanged since)
Gateways have two more:
  token NAME            create or replace the token workers join with; shown once
                        (--token-out FILE: write it to FILE, mode 0600, instead)
  workers NAME          show the workers that joined, with the config version each applied
For diagnostic, cache and policy, NAME is the scope: global, api:NAME or operation:API/OP.
`apimctl <resource> <verb> --help` lists the flags.

All resources at once, as one JSON document (like kubectl apply):
  export                print every resource: {"apiVersion": "apim/v1", "tiers": [...],
                        "certificates": [...], "gateways": [...], "apis": [...],
                        "diagnostic_settings": [...], "cache_settings": [...],
                        "policies": [...]}; each resource as in `-o json` with proto field
                        names, without etag, create_time, update_time, built_in, warnings
                        and secrets (private keys, Redis passwords; import keeps the
                        stored ones)
  import FILE           make the server match FILE (- is stdin), in the order above: create
                        what is missing, replace what differs (only if unchanged since read,
                        else ABORTED), leave the rest. Prints "create api orders", "update
                        gateway edge (tier: standard -> premium)", then "N created, N updated,
                        N deleted, N unchanged". Importing the same file again changes nothing.
    --dry-run           change nothing; print what would change, prefixed "would "
    --prune             also delete every resource FILE does not list (built-in tiers stay),
                        in reverse order, after the creates and updates
    -v, --verbose       also print "unchanged tier basic"

Examples:
  apimctl tier list
  apimctl api create orders --path-prefix /orders --backend-url http://127.0.0.1:9000 --sse
  apimctl api update orders --gateways edge,internal
  apimctl -o json diagnostic get api:orders
  apimctl policy update api:orders --file policy.xml
  apimctl gateway token edge --token-out edge.token
  apimctl certificate create web --cert-file web.crt --key-file web.key
  apimctl gateway update edge --hostname api.example.com=web --default-hostname api.example.com
  apimctl gateway update edge --redis-address redis.internal:6380 --redis-tls \
      --redis-user apim --redis-password-file redis.password
  apimctl export > config.json
  apimctl import config.json --dry-run

Exit status:
   0  success
   3  INVALID_ARGUMENT     the server rejected a value
   4  DEADLINE_EXCEEDED    no answer within --timeout
   5  NOT_FOUND            no such resource
   6  ALREADY_EXISTS       create of a name that is taken
   7  PERMISSION_DENIED
   9  FAILED_PRECONDITION  the change conflicts with other resources
  10  ABORTED              --etag does not match the stored one; for import, a resource
                           changed between its read and its update
  14  UNAVAILABLE          the server cannot be reached
  16  UNAUTHENTICATED      missing or wrong token
  64  usage error          unknown flag, missing NAME, bad value
  65  data error           import FILE is not a valid document (the parser's message says why)
  66  no input             --token-file, --file, a PEM file or import FILE cannot be read,
                           or --redis-password-file's first line is empty
  73  cannot create        --token-out FILE cannot be written
Any other failed call exits with its gRPC status code; the error is printed as
"apimctl: CODE_NAME: message" (import and export name the step: "apimctl: ABORTED: update
gateway edge: ..."). An import stops at the first failed call, after printing what it did.)footer";

std::string UsageMessage(std::string_view what) {
  return "apimctl: " + std::string(what) + "\nRun with --help for more information.\n";
}

// A command line that ends before any call: help, or an error.
ParsedCommandLine Finished(int exit_code, std::string out, std::string err) {
  ParsedCommandLine parsed;
  parsed.exit_code = exit_code;
  parsed.out = std::move(out);
  parsed.err = std::move(err);
  return parsed;
}

ParsedCommandLine UsageError(std::string_view what) {
  return Finished(kExitUsage, "", UsageMessage(what));
}

ParsedCommandLine InputError(const absl::Status& status) {
  return Finished(kExitNoInput, "", "apimctl: " + std::string(status.message()) + "\n");
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return absl::NotFoundError("cannot read " + path + ": " + std::strerror(errno));
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Uppercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// Only for fields every resource has (etag) or that its ResourceKind names; the ResourceKinds
// unit test checks both.
void SetStringField(Message& message, const std::string& field_name, const std::string& value) {
  message.GetReflection()->SetString(&message, message.GetDescriptor()->FindFieldByName(field_name),
                                     value);
}

const char* VerbName(Verb verb) {
  switch (verb) {
    case Verb::kCreate:
      return "create";
    case Verb::kGet:
      return "get";
    case Verb::kList:
      return "list";
    case Verb::kUpdate:
      return "update";
    case Verb::kDelete:
      return "delete";
    case Verb::kToken:
      return "token";
    case Verb::kWorkers:
      return "workers";
    case Verb::kSet:
      return "set";
    case Verb::kRegenerateKey:
      return "regenerate-key";
    case Verb::kExport:
      return "export";
    case Verb::kImport:
      return "import";
  }
  return "";
}

std::string VerbDescription(Verb verb, const ResourceKind& kind) {
  const std::string key = " " + Uppercase(kind.key_field);
  switch (verb) {
    case Verb::kCreate:
      return "Create the " + kind.command + key + " from the flags";
    case Verb::kGet:
      return "Show the " + kind.command + key;
    case Verb::kList:
      return "List every " + kind.command;
    case Verb::kUpdate:
      return "Change the fields of the " + kind.command + key +
             " given as flags; the others keep their values";
    case Verb::kDelete:
      return "Delete the " + kind.command + key;
    case Verb::kToken:
      return "Create or replace the token workers join the " + kind.command + key +
             " with (shown once)";
    case Verb::kWorkers:
      return "List the workers that joined the " + kind.command + key;
    case Verb::kSet:
      return "Create the " + kind.command + key + ", or replace it if it exists";
    case Verb::kRegenerateKey:
      return "Replace one key of the " + kind.command + key +
             " (the other keeps working); the new key is shown once";
    case Verb::kExport:
    case Verb::kImport:
      break;  // not per resource
  }
  return "";
}

// The CLI11 app for the whole grammar and the variables its options fill. The options point into
// this object, so it is neither copied nor moved.
class CommandLine {
 public:
  CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // Call once.
  ParsedCommandLine Parse(const std::vector<std::string>& args);

 private:
  // One `<resource> <verb>` subcommand.
  struct VerbCommand {
    const ResourceKind* kind = nullptr;
    Verb verb = Verb::kGet;
    CLI::App* app = nullptr;
    std::unique_ptr<MessageFlags> flags{};             // create and update
    std::unique_ptr<BackendTlsFlags> backend_tls{};    // api create and update
    std::unique_ptr<CertificateFlags> certificate{};   // certificate create and update
    std::unique_ptr<HostnameFlags> hostnames{};        // gateway create and update
    std::unique_ptr<SharedStateFlags> shared_state{};  // gateway create and update
    CLI::Option* file = nullptr;                       // --file, for resources with a file_field
    // For scope-keyed resources: the positional SCOPE and --scope, one of which is needed.
    std::pair<CLI::Option*, CLI::Option*> scope_options{nullptr, nullptr};
  };

  void AddVerb(CLI::App& resource_app, const ResourceKind& kind, Verb verb);
  void AddDeclarativeCommands();
  // Fills the connection and output format, or returns the error that ends the command line.
  std::optional<ParsedCommandLine> ResolveCommon(Command& command) const;
  ParsedCommandLine Resolve(const VerbCommand& chosen) const;
  ParsedCommandLine ResolveExport() const;
  ParsedCommandLine ResolveImport() const;
  // Explicit --token, else the first line of --token-file, else $APIM_TOKEN.
  absl::StatusOr<std::string> Token() const;

  CLI::App app_{kDescription, "apimctl"};
  std::string server_ = "127.0.0.1:50051";
  tls::ClientTls tls_;
  std::string token_;
  std::string token_file_;
  std::string output_ = "table";
  CLI::Option* output_option_ = nullptr;
  double timeout_seconds_ = 10;
  // Filled by whichever verb subcommand is given; only one is.
  std::string key_;
  std::string etag_;
  std::string file_;
  std::string token_out_;
  std::string which_key_ = "primary";
  uint32_t page_size_ = 500;
  std::vector<VerbCommand> verbs_;
  CLI::App* export_app_ = nullptr;
  CLI::App* import_app_ = nullptr;
  std::string import_file_;
  ImportOptions import_options_;
};

CommandLine::CommandLine() {
  app_.failure_message(
      [](const CLI::App*, const CLI::Error& error) { return UsageMessage(error.what()); });
  app_.require_subcommand(1);
  app_.get_formatter()->column_width(34);  // shared by the subcommands added below
  // Global options may also follow the resource and verb: `apimctl api get orders -o json`.
  app_.fallthrough();

  app_.add_option("--server", server_, "Management service address (default 127.0.0.1:50051)")
      ->envname("APIM_SERVER")
      ->type_name("ADDR");
  app_.add_flag("--tls", tls_.tls, "TLS, verified against the system's CAs (or --ca-file)");
  app_.add_option("--ca-file", tls_.ca_file, "TLS, verified against the CAs in this PEM file")
      ->envname("APIM_CA_FILE")
      ->type_name("FILE");
  CLI::Option* cert = app_.add_option("--cert-file", tls_.cert_file,
                                      "Client certificate (PEM) for a control plane that asks")
                          ->type_name("FILE");
  CLI::Option* key =
      app_.add_option("--key-file", tls_.key_file, "Private key of --cert-file")->type_name("FILE");
  cert->needs(key);
  key->needs(cert);
  app_.add_flag("--allow-insecure", tls_.allow_insecure,
                "Plaintext to a server that is not on loopback (the token is readable on the "
                "network)");
  CLI::Option* token = app_.add_option(
      "--token", token_, "Admin token, sent as \"authorization: Bearer TOKEN\" (env APIM_TOKEN)");
  app_.add_option("--token-file", token_file_, "Read the token from the first line of FILE")
      ->type_name("FILE")
      ->excludes(token);
  output_option_ = app_.add_option("-o,--output", output_, "Output format (default table)")
                       ->check(CLI::IsMember({"table", "json"}));
  app_.add_option("--timeout", timeout_seconds_, "Deadline of each call (default 10)")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber);

  for (const ResourceKind& kind : ResourceKinds()) {
    CLI::App* resource_app = app_.add_subcommand(kind.command, kind.summary);
    resource_app->require_subcommand(1);
    for (Verb verb : {Verb::kCreate, Verb::kGet, Verb::kList, Verb::kUpdate, Verb::kDelete}) {
      AddVerb(*resource_app, kind, verb);
    }
    // Workers join gateways, so only gateways have a join token and workers.
    if (kind.prototype->GetDescriptor() == v1::Gateway::descriptor()) {
      AddVerb(*resource_app, kind, Verb::kToken);
      AddVerb(*resource_app, kind, Verb::kWorkers);
    }
    if (kind.prototype->GetDescriptor() == v1::Policy::descriptor()) {
      AddVerb(*resource_app, kind, Verb::kSet);
    }
    if (kind.prototype->GetDescriptor() == v1::Subscription::descriptor()) {
      AddVerb(*resource_app, kind, Verb::kRegenerateKey);
    }
  }
  AddDeclarativeCommands();
  // Set last: subcommands inherit the footer of their parent as it is when they are added.
  app_.footer(kFooter);
}

void CommandLine::AddVerb(CLI::App& resource_app, const ResourceKind& kind, Verb verb) {
  CLI::App* app = resource_app.add_subcommand(VerbName(verb), VerbDescription(verb, kind));
  VerbCommand command{.kind = &kind, .verb = verb, .app = app};
  if (verb != Verb::kList) {
    CLI::Option* positional = app->add_option(Uppercase(kind.key_field), key_, kind.key_help);
    if (kind.key_field == "scope") {
      // Scoped resources also take the key as --scope, as in `policy set --scope api:orders`.
      CLI::Option* flag = app->add_option("--scope", key_, kind.key_help)->type_name("SCOPE");
      positional->excludes(flag);
      command.scope_options = {positional, flag};
    } else {
      positional->required();
    }
  }
  if (verb == Verb::kRegenerateKey) {
    app->add_option("--key", which_key_, "Which key: primary or secondary")
        ->check(CLI::IsMember({"primary", "secondary"}))
        ->capture_default_str();
  }
  if (verb == Verb::kCreate || verb == Verb::kUpdate || verb == Verb::kSet) {
    // The key has the positional NAME; the rest of these the server owns.
    std::set<std::string> no_flag = {kind.key_field};
    const google::protobuf::Descriptor& type = *kind.prototype->GetDescriptor();
    for (int i = 0; i < type.field_count(); ++i) {
      if (IsOutputOnly(*type.field(i))) no_flag.insert(type.field(i)->name());
    }
    // PEM text comes from files (CertificateFlags), never from the command line, where a key
    // would show in the process list.
    if (&type == v1::Certificate::descriptor())
      no_flag.insert({"certificate_chain", "private_key"});
    command.flags = std::make_unique<MessageFlags>(*app, *kind.prototype->GetDescriptor(), no_flag);
    if (kind.prototype->GetDescriptor() == v1::Api::descriptor() && verb != Verb::kSet) {
      command.backend_tls = std::make_unique<BackendTlsFlags>(*app);
    }
    if (kind.prototype->GetDescriptor() == v1::Certificate::descriptor()) {
      command.certificate = std::make_unique<CertificateFlags>(*app, verb == Verb::kCreate);
    }
    if (kind.prototype->GetDescriptor() == v1::Gateway::descriptor()) {
      command.hostnames = std::make_unique<HostnameFlags>(*app);
      command.shared_state = std::make_unique<SharedStateFlags>(*app, verb == Verb::kUpdate);
    }
    if (!kind.file_field.empty()) {
      command.file =
          app->add_option("--file", file_, "Read " + kind.file_field + " from FILE (- is stdin)")
              ->type_name("FILE");
      if (CLI::Option* field_option = command.flags->OptionFor(kind.file_field)) {
        command.file->excludes(field_option);
      }
    }
  }
  if (verb == Verb::kList) {
    app->add_option("--page-size", page_size_, "Resources per List call; all pages are printed")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
  }
  if (verb == Verb::kUpdate || verb == Verb::kDelete) {
    app->add_option("--etag", etag_, "Fail with ABORTED unless the stored etag is still E")
        ->type_name("E");
  }
  if (verb == Verb::kUpdate) {
    app->footer("Only the fields given are sent (as update_mask); the others keep their values.");
  }
  if (verb == Verb::kToken) {
    app->add_option("--token-out", token_out_,
                    "Write the token to FILE (mode 0600) instead of printing it")
        ->type_name("FILE");
  }
  verbs_.push_back(std::move(command));
}

void CommandLine::AddDeclarativeCommands() {
  export_app_ = app_.add_subcommand(
      "export", "Print every resource as one JSON document, which import reads back");
  export_app_->footer(
      "Always JSON. Output-only fields (etag, create_time, update_time, built_in, warnings) are "
      "left out.");
  import_app_ = app_.add_subcommand(
      "import",
      "Make the server match a document from export (create, update; delete with --prune)");
  import_app_->add_option("FILE", import_file_, "The document to apply; - is stdin")->required();
  import_app_->add_flag("--dry-run", import_options_.dry_run,
                        "Change nothing; print what would change, prefixed \"would \"");
  import_app_->add_flag("--prune", import_options_.prune,
                        "Also delete every resource FILE does not list, except built-in tiers");
  import_app_->add_flag("-v,--verbose", import_options_.verbose,
                        "Also print the resources that are unchanged");
  import_app_->footer(
      R"(Kinds are applied in this order: tiers, certificates, gateways, apis, products,
subscriptions, diagnostic_settings, cache_settings, policies. Each resource is read, created if missing, replaced if it differs
(with the etag just read, so a concurrent change fails with ABORTED) and left alone if equal.
--prune deletes last, in reverse order. The first failed call stops the import.)");
}

ParsedCommandLine CommandLine::Parse(const std::vector<std::string>& args) {
  try {
    app_.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 takes them reversed
  } catch (const CLI::ParseError& error) {
    std::ostringstream out;
    std::ostringstream err;
    const int code = app_.exit(error, out, err);  // help exits 0
    return Finished(code == 0 ? 0 : kExitUsage, out.str(), err.str());
  }
  for (const VerbCommand& verb : verbs_) {
    if (verb.app->parsed()) return Resolve(verb);
  }
  if (export_app_->parsed()) return ResolveExport();
  if (import_app_->parsed()) return ResolveImport();
  return UsageError("a resource and a verb are required");  // require_subcommand checks this
}

absl::StatusOr<std::string> CommandLine::Token() const {
  if (!token_.empty()) return token_;
  // "-" is standard input, as for --file.
  if (!token_file_.empty()) return ReadFirstLine(token_file_ == "-" ? "/dev/stdin" : token_file_);
  return SecretFromEnvironment("APIM_TOKEN");
}

std::optional<ParsedCommandLine> CommandLine::ResolveCommon(Command& command) const {
  command.output = output_ == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  command.connection.server = server_;
  command.connection.tls = tls_;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      tls::ChannelCredentialsFor(server_, tls_);
  if (!credentials.ok()) return UsageError(std::string(credentials.status().message()));
  command.connection.credentials = *std::move(credentials);
  command.connection.timeout =
      std::chrono::milliseconds(static_cast<int64_t>(std::ceil(timeout_seconds_ * 1000)));

  absl::StatusOr<std::string> token = Token();
  if (!token.ok()) return InputError(token.status());
  if (token->empty())
    return UsageError("no token: pass --token or --token-file, or set APIM_TOKEN");
  command.connection.token = *std::move(token);
  return std::nullopt;
}

ParsedCommandLine CommandLine::ResolveExport() const {
  // The document is JSON whatever -o says; an explicit "-o table" is a mistake worth naming.
  if (output_option_->count() > 0 && output_ != "json") {
    return UsageError("export prints JSON only; drop -o or pass -o json");
  }
  Command command;
  command.verb = Verb::kExport;
  if (std::optional<ParsedCommandLine> error = ResolveCommon(command)) return *std::move(error);
  command.output = OutputFormat::kJson;
  ParsedCommandLine parsed;
  parsed.command = std::move(command);
  return parsed;
}

ParsedCommandLine CommandLine::ResolveImport() const {
  if (output_option_->count() > 0 && output_ != "table") {
    return UsageError("import prints one line per change; -o json is not supported");
  }
  Command command;
  command.verb = Verb::kImport;
  command.import_options = import_options_;
  if (std::optional<ParsedCommandLine> error = ResolveCommon(command)) return *std::move(error);
  absl::StatusOr<std::string> text = ReadFile(import_file_);
  if (!text.ok()) return InputError(text.status());
  absl::StatusOr<Configuration> configuration = ParseConfiguration(*text);
  if (!configuration.ok()) {
    const std::string name = import_file_ == "-" ? "standard input" : import_file_;
    return Finished(
        kExitDataError, "",
        "apimctl: " + name + ": " + std::string(configuration.status().message()) + "\n");
  }
  command.configuration = *std::move(configuration);
  ParsedCommandLine parsed;
  parsed.command = std::move(command);
  return parsed;
}

ParsedCommandLine CommandLine::Resolve(const VerbCommand& chosen) const {
  if (chosen.scope_options.first != nullptr && key_.empty()) {
    return UsageError("the scope is required: give it as SCOPE or --scope SCOPE");
  }
  Command command;
  command.kind = chosen.kind;
  command.verb = chosen.verb;
  command.key = key_;
  command.which_key = which_key_;
  if (std::optional<ParsedCommandLine> error = ResolveCommon(command)) return *std::move(error);

  if (chosen.flags != nullptr) {
    const ResourceKind& kind = *chosen.kind;
    command.resource.reset(kind.prototype->New());
    SetStringField(*command.resource, kind.key_field, key_);
    std::vector<std::string> given = chosen.flags->Apply(*command.resource);
    if (chosen.file != nullptr && chosen.file->count() > 0) {
      absl::StatusOr<std::string> text = ReadFile(file_);
      if (!text.ok()) return InputError(text.status());
      SetStringField(*command.resource, kind.file_field, *text);
      given.push_back(kind.file_field);
    }
    if (chosen.backend_tls != nullptr) {
      absl::Status read =
          chosen.backend_tls->Apply(static_cast<v1::Api&>(*command.resource), given);
      if (!read.ok()) return InputError(read);
    }
    if (chosen.certificate != nullptr) {
      absl::Status read =
          chosen.certificate->Apply(static_cast<v1::Certificate&>(*command.resource), given);
      if (!read.ok()) return InputError(read);
    }
    if (chosen.hostnames != nullptr) {
      absl::Status bound =
          chosen.hostnames->Apply(static_cast<v1::Gateway&>(*command.resource), given);
      if (!bound.ok()) return UsageError(std::string(bound.message()));
    }
    if (chosen.shared_state != nullptr) {
      absl::Status read =
          chosen.shared_state->Apply(static_cast<v1::Gateway&>(*command.resource), given);
      if (!read.ok()) return InputError(read);
    }
    if (chosen.verb == Verb::kUpdate) {
      // An empty update_mask means "replace everything", which no flag asked for.
      if (given.empty()) return UsageError("update needs at least one field flag to change");
      for (const std::string& field : given) command.update_mask.add_paths(field);
      SetStringField(*command.resource, "etag", etag_);
    }
  }
  if (chosen.verb == Verb::kDelete) command.etag = etag_;
  command.page_size = page_size_;
  command.token_out = token_out_;
  ParsedCommandLine parsed;
  parsed.command = std::move(command);
  return parsed;
}

// The file --token-out names. The server keeps only the token's hash, so a token that cannot be
// saved is lost: the file is opened before the call, and a failure to open it stops the command
// before the token changes. A file this object created is removed again unless it was written.
class TokenFile {
 public:
  TokenFile() = default;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  // Opens `path` for writing, creating it with mode 0600; an existing file keeps its content.
  absl::Status Open(const std::string& path);
  // Replaces the file's content with `token` alone and makes it readable by its owner only.
  absl::Status Write(std::string_view token);

 private:
  absl::Status Error() const {
    return absl::PermissionDeniedError("cannot write " + path_ + ": " + std::strerror(errno));
  }

  std::string path_;
  int fd_ = -1;
  bool created_ = false;
  bool written_ = false;
};

TokenFile::~TokenFile() {
  if (fd_ >= 0) ::close(fd_);
  if (created_ && !written_) ::unlink(path_.c_str());
}

absl::Status TokenFile::Open(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  created_ = fd_ >= 0;
  if (fd_ < 0 && errno == EEXIST) fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  return fd_ >= 0 ? absl::OkStatus() : Error();
}

absl::Status TokenFile::Write(std::string_view token) {
  if (::fchmod(fd_, 0600) != 0 || ::ftruncate(fd_, 0) != 0) return Error();
  while (!token.empty()) {
    const ssize_t written = ::write(fd_, token.data(), token.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return Error();
    token.remove_prefix(static_cast<size_t>(written));
  }
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) return Error();
  written_ = true;
  return absl::OkStatus();
}

void PrintResult(const Command& command, const std::vector<std::unique_ptr<Message>>& resources,
                 std::ostream& out) {
  const bool json = command.output == OutputFormat::kJson;
  if (command.verb == Verb::kDelete) {
    out << (json ? std::string("{}") : "deleted " + command.kind->command + " " + command.key)
        << '\n';
    return;
  }
  if (command.verb == Verb::kToken && !command.token_out.empty()) {
    out << (json ? "{}" : "wrote token for gateway " + command.key + " to " + command.token_out)
        << '\n';
    return;
  }
  if (command.verb == Verb::kToken && !json) {
    out << "token for gateway " << command.key << " (shown once; workers join with it):\n"
        << static_cast<const v1::GatewayToken&>(*resources.front()).token() << '\n';
    return;
  }
  std::vector<const Message*> rows;
  for (const std::unique_ptr<Message>& resource : resources) rows.push_back(resource.get());
  if (!json) {
    PrintTable(command.verb == Verb::kWorkers ? GatewayWorkerColumns() : command.kind->columns,
               rows, out);
  } else if (command.verb == Verb::kList || command.verb == Verb::kWorkers) {
    PrintJsonArray(rows, out);
  } else {
    PrintJson(*rows.front(), out);
  }
}

}  // namespace

ParsedCommandLine ParseCommandLine(const std::vector<std::string>& args) {
  CommandLine command_line;
  return command_line.Parse(args);
}

int RunCommand(const Command& command, ManagementStub& stub, std::ostream& out, std::ostream& err) {
  if (command.verb == Verb::kExport) return Export(stub, command.connection, out, err);
  if (command.verb == Verb::kImport) {
    return Import(command.configuration, command.import_options, stub, command.connection, out,
                  err);
  }
  const ResourceKind& kind = *command.kind;
  TokenFile token_file;
  if (!command.token_out.empty()) {
    if (absl::Status opened = token_file.Open(command.token_out); !opened.ok()) {
      err << "apimctl: " << opened.message() << '\n';
      return kExitCantCreate;
    }
  }

  std::vector<std::unique_ptr<Message>> resources;
  grpc::Status status;
  grpc::ClientContext context;
  PrepareContext(context, command.connection);
  switch (command.verb) {
    case Verb::kCreate: {
      Message& created = *resources.emplace_back(kind.prototype->New());
      status = kind.calls.create(stub, context, *command.resource, created);
      break;
    }
    case Verb::kGet: {
      v1::GetRequest request;
      request.set_name(command.key);
      Message& found = *resources.emplace_back(kind.prototype->New());
      status = kind.calls.get(stub, context, request, found);
      break;
    }
    case Verb::kList:
      status = ListAll(kind, stub, command.connection, command.page_size, resources);
      break;
    case Verb::kUpdate: {
      Message& updated = *resources.emplace_back(kind.prototype->New());
      status = kind.calls.update(stub, context, *command.resource, command.update_mask, updated);
      break;
    }
    case Verb::kSet: {
      // Replace (an empty mask) if it exists, else create.
      Message& set = *resources.emplace_back(kind.prototype->New());
      status =
          kind.calls.update(stub, context, *command.resource, google::protobuf::FieldMask(), set);
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
        grpc::ClientContext create_context;
        PrepareContext(create_context, command.connection);
        status = kind.calls.create(stub, create_context, *command.resource, set);
      }
      break;
    }
    case Verb::kRegenerateKey: {
      v1::RegenerateSubscriptionKeyRequest request;
      request.set_name(command.key);
      request.set_key(command.which_key);
      auto subscription = std::make_unique<v1::Subscription>();
      status = stub.RegenerateSubscriptionKey(&context, request, subscription.get());
      resources.push_back(std::move(subscription));
      break;
    }
    case Verb::kDelete: {
      v1::DeleteRequest request;
      request.set_name(command.key);
      request.set_etag(command.etag);
      status = kind.calls.remove(stub, context, request);
      break;
    }
    case Verb::kToken: {
      v1::RotateGatewayTokenRequest request;
      request.set_name(command.key);
      auto token = std::make_unique<v1::GatewayToken>();
      status = stub.RotateGatewayToken(&context, request, token.get());
      resources.push_back(std::move(token));
      break;
    }
    case Verb::kWorkers: {
      v1::ListGatewayWorkersRequest request;
      request.set_name(command.key);
      v1::ListGatewayWorkersResponse response;
      status = stub.ListGatewayWorkers(&context, request, &response);
      for (const v1::GatewayWorker& worker : response.workers()) {
        resources.push_back(std::make_unique<v1::GatewayWorker>(worker));
      }
      break;
    }
    case Verb::kExport:
    case Verb::kImport:
      break;  // handled above
  }

  if (!status.ok()) return ReportFailedCall(status, err);
  if (!command.token_out.empty()) {
    const auto& token = static_cast<const v1::GatewayToken&>(*resources.front());
    if (absl::Status written = token_file.Write(token.token()); !written.ok()) {
      err << "apimctl: " << written.message() << "; the gateway's token was replaced, so run "
          << "`apimctl gateway token " << command.key << "` again\n";
      return kExitCantCreate;
    }
  }
  PrintResult(command, resources, out);
  // What the server accepted but will not apply (e.g. to SSE APIs) goes to stderr.
  for (const std::unique_ptr<Message>& resource : resources) {
    const google::protobuf::FieldDescriptor* warnings =
        resource->GetDescriptor()->FindFieldByName("warnings");
    if (warnings == nullptr) continue;
    const google::protobuf::Reflection& reflection = *resource->GetReflection();
    for (int i = 0; i < reflection.FieldSize(*resource, warnings); ++i) {
      err << "apimctl: warning: "
          << EscapeControlCharacters(reflection.GetRepeatedString(*resource, warnings, i)) << '\n';
    }
  }
  return 0;
}

}  // namespace apim::cli

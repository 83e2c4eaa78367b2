#include "controlplane/server_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>
#include <system_error>

#include "common/files.h"
#include "common/return_if_error.h"
#include "common/str_cat.h"
#include "common/tls/pem.h"

namespace apim::controlplane {
namespace {

// How often gRPC looks at the staged files: a reload takes effect within this.
constexpr unsigned int kRefreshSeconds = 1;

// Staging directories are named "apim-controlplane-tls-<pid>-XXXXXX".
constexpr std::string_view kStagingPrefix = "apim-controlplane-tls-";

// A control plane killed outright (SIGKILL, a power cut) cannot remove its staged copy of the
// key; the next one to start removes those whose process is gone.
void RemoveStagingOfDeadProcesses(const std::filesystem::path& directory) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kStagingPrefix)) continue;
    const std::string_view rest = std::string_view(name).substr(kStagingPrefix.size());
    pid_t pid = 0;
    auto [end, parsed] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (parsed != std::errc() || end == rest.data() || *end != '-' || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code ignored;
    std::filesystem::remove_all(entry.path(), ignored);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerTls>> ServerTls::Start(ServerTlsFiles files) {
  const std::filesystem::path temp = std::filesystem::temp_directory_path();
  RemoveStagingOfDeadProcesses(temp);
  std::string pattern = (temp / StrCat(kStagingPrefix, getpid(), "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(StrCat("cannot make a private directory for TLS files: ",
                                      std::generic_category().message(errno)));
  }
  std::unique_ptr<ServerTls> tls(new ServerTls(std::move(files), pattern));
  if (absl::Status staged = tls->Reload(); !staged.ok()) return staged;
  const std::filesystem::path current = tls->staging_ / "current";
  const bool mutual = !tls->files_.client_ca_file.empty();
  // The provider reads the staged files through the `current` link: a reload swaps the link, so
  // gRPC never sees a key from one generation with a certificate from another.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      (current / "key.pem").string(), (current / "cert.pem").string(),
      mutual ? (current / "client-ca.pem").string() : "", kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  tls->credentials_ = grpc::experimental::TlsServerCredentials(options);
  return tls;
}

ServerTls::~ServerTls() {
  std::error_code ignored;
  std::filesystem::remove_all(staging_, ignored);
}

absl::Status ServerTls::Reload() {
  absl::StatusOr<std::string> chain = tls::ReadCertificates("--tls-cert-file", files_.cert_file);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key = tls::ReadPrivateKey("--tls-key-file", files_.key_file);
  if (!key.ok()) return key.status();
  if (absl::Status matches = tls::CheckKeyMatchesCertificate(*chain, *key); !matches.ok()) {
    return absl::InvalidArgumentError(
        StrCat("--tls-key-file ", files_.key_file, ": ", matches.message(), " in --tls-cert-file"));
  }
  std::string client_ca;
  if (!files_.client_ca_file.empty()) {
    absl::StatusOr<std::string> read =
        tls::ReadCertificates("--client-ca-file", files_.client_ca_file);
    if (!read.ok()) return read.status();
    client_ca = *std::move(read);
  }

  const std::filesystem::path next = staging_ / StrCat("generation-", ++generation_);
  std::error_code error;
  std::filesystem::create_directory(next, error);
  if (error) return absl::InternalError(StrCat("cannot stage TLS files: ", error.message()));
  APIM_RETURN_IF_ERROR(WriteFileAtomically((next / "cert.pem").string(), *chain));
  APIM_RETURN_IF_ERROR(WriteFileAtomically((next / "key.pem").string(), *key));
  if (!client_ca.empty()) {
    APIM_RETURN_IF_ERROR(WriteFileAtomically((next / "client-ca.pem").string(), client_ca));
  }
  // Swap the link atomically: a new link renamed over the old one.
  const std::filesystem::path link = staging_ / "current";
  const std::filesystem::path new_link = staging_ / "current.new";
  std::filesystem::remove(new_link, error);
  std::filesystem::create_directory_symlink(next.filename(), new_link, error);
  if (!error) std::filesystem::rename(new_link, link, error);
  if (error) return absl::InternalError(StrCat("cannot stage TLS files: ", error.message()));
  // The generation before the previous one is read by nobody any more.
  std::filesystem::remove_all(staging_ / StrCat("generation-", generation_ - 2), error);
  return absl::OkStatus();
}

}  // namespace apim::controlplane

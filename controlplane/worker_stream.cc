#include "controlplane/worker_stream.h"

#include <google/protobuf/util/message_differencer.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/str_cat.h"
#include "controlplane/admin_token.h"

namespace apim::controlplane {
namespace {

constexpr size_t kMaxWorkerIdLength = 128;

// The content of a snapshot, without its version: a commit that changed nothing this gateway
// serves leaves it equal, and nothing is pushed.
bool SameContent(const v1::Snapshot& a, const v1::Snapshot& b) {
  v1::Snapshot left = a;
  v1::Snapshot right = b;
  left.clear_version();
  right.clear_version();
  return google::protobuf::util::MessageDifferencer::Equals(left, right);
}

// Worker ids appear in logs and in `apimctl gateway workers`: host names, pod names, "host-pid".
bool IsWorkerIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == ':' || c == '@';
}

grpc::Status CheckHello(const std::optional<v1::WorkerMessage>& first) {
  if (!first || !first->has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "hello: the first message on a stream must be a hello");
  }
  const std::string& id = first->hello().worker_id();
  if (id.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello.worker_id: is required");
  }
  if (id.size() > kMaxWorkerIdLength || !std::all_of(id.begin(), id.end(), IsWorkerIdChar)) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        StrCat("hello.worker_id: must be 1-", kMaxWorkerIdLength, " letters, digits or -_.:@"));
  }
  return grpc::Status::OK;
}

}  // namespace

const absl::StatusOr<std::string>& PushRound::TokenHash(const std::string& gateway) {
  auto found = token_hashes_.find(gateway);
  if (found == token_hashes_.end()) {
    found = token_hashes_.emplace(gateway, store_.GatewayTokenHash(gateway)).first;
  }
  return found->second;
}

const absl::StatusOr<v1::Snapshot>& PushRound::Snapshot(const std::string& gateway) {
  auto found = snapshots_.find(gateway);
  if (found == snapshots_.end()) {
    found = snapshots_.emplace(gateway, store_.BuildSnapshot(gateway)).first;
  }
  return found->second;
}

WorkerStream::WorkerStream(std::string peer, WorkerRegistry* registry, Callbacks callbacks,
                           std::chrono::steady_clock::time_point hello_deadline)
    : peer_(std::move(peer)),
      registry_(registry),
      callbacks_(std::move(callbacks)),
      hello_deadline_(hello_deadline) {}

std::shared_ptr<WorkerStream> WorkerStream::Create(
    grpc::CallbackServerContext& context, WorkerRegistry& registry, Callbacks callbacks,
    std::chrono::steady_clock::time_point hello_deadline) {
  auto stream = std::make_shared<WorkerStream>(context.peer(), &registry, std::move(callbacks),
                                               hello_deadline);
  stream->self_ = stream;
  return stream;
}

WorkerStream* WorkerStream::Refuse(grpc::CallbackServerContext& context, Callbacks callbacks,
                                   grpc::Status status) {
  auto stream = std::make_shared<WorkerStream>(context.peer(), nullptr, std::move(callbacks),
                                               std::chrono::steady_clock::time_point());
  stream->self_ = stream;
  stream->End(std::move(status));
  return stream.get();
}

void WorkerStream::StartRead() {
  {
    std::lock_guard lock(mu_);
    read_outstanding_ = true;
    read_wanted_ = false;
  }
  ServerBidiReactor::StartRead(&incoming_);
}

void WorkerStream::End(grpc::Status status) {
  if (phase_ == Phase::kEnded) return;
  phase_ = Phase::kEnded;
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    end_reason_ = status.error_message();
  }
  Finish(std::move(status));
}

void WorkerStream::Advance(PushRound& round, bool offer,
                           std::chrono::steady_clock::time_point now) {
  if (phase_ == Phase::kEnded) return;
  bool peer_gone, read_wanted, write_outstanding, hello_arrived;
  {
    std::lock_guard lock(mu_);
    peer_gone = peer_gone_;
    read_wanted = read_wanted_ && !read_outstanding_;
    write_outstanding = write_outstanding_;
    hello_arrived = first_message_.has_value();
  }
  if (peer_gone) return End(grpc::Status::CANCELLED);
  if (phase_ == Phase::kAwaitingHello) {
    if (hello_arrived) return Join(round);
    if (now >= hello_deadline_) {
      spdlog::warn("stream from {} ended: no hello within the deadline", peer_);
      return End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                              "hello: not received in time; send it first"));
    }
    return;
  }
  if (read_wanted) StartRead();
  if (offer) {
    // The token is checked again after every change: a rotated token (or a deleted gateway)
    // ends the streams that joined with the old one.
    const absl::StatusOr<std::string>& token_hash = round.TokenHash(hello_.gateway());
    if (!token_hash.ok() || *token_hash != token_hash_) {
      spdlog::warn("worker {} of gateway \"{}\" cut off: its token is no longer valid",
                   hello_.worker_id(), hello_.gateway());
      return End(grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          StrCat("hello.gateway_token: no longer valid for gateway \"", hello_.gateway(),
                 "\" (the token was rotated or the gateway deleted); join with the new token")));
    }
    const absl::StatusOr<v1::Snapshot>& snapshot = round.Snapshot(hello_.gateway());
    if (!snapshot.ok()) {
      return End(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              StrCat("gateway \"", hello_.gateway(),
                                     "\" cannot be served: ", snapshot.status().message())));
    }
    Offer(*snapshot);
  }
  if (latest_unsent_ && !write_outstanding) StartWriteOfLatest();
}

void WorkerStream::Join(PushRound& round) {
  v1::WorkerMessage first;
  {
    std::lock_guard lock(mu_);
    first = *first_message_;
  }
  if (grpc::Status valid = CheckHello(first); !valid.ok()) return End(std::move(valid));
  hello_ = first.hello();
  const absl::StatusOr<std::string>& token_hash = round.TokenHash(hello_.gateway());
  if (!token_hash.ok() || !TokenMatches(*token_hash, hello_.gateway_token())) {
    spdlog::warn("worker {} from {} refused: bad token for gateway \"{}\"", hello_.worker_id(),
                 peer_, hello_.gateway());
    return End(grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        StrCat("hello.gateway_token: not a valid token for gateway \"", hello_.gateway(), "\"")));
  }
  hello_.clear_gateway_token();
  token_hash_ = *token_hash;
  phase_ = Phase::kJoined;
  serial_ = registry_->Connected(hello_, peer_);
  spdlog::info("worker {} joined gateway \"{}\" holding version {}", hello_.worker_id(),
               hello_.gateway(), hello_.version());
  StartRead();
  Advance(round, /*offer=*/true, std::chrono::steady_clock::now());
}

void WorkerStream::Offer(const v1::Snapshot& snapshot) {
  if (!latest_ && snapshot.version() == hello_.version()) {
    latest_ = snapshot;  // The worker joined holding it.
    return;
  }
  if (latest_ && SameContent(*latest_, snapshot)) return;
  latest_ = snapshot;
  latest_unsent_ = true;  // Overwrites an unsent older one: bursts coalesce into the latest.
}

void WorkerStream::StartWriteOfLatest() {
  latest_unsent_ = false;
  *outgoing_.mutable_snapshot() = *latest_;
  outgoing_.set_nonce(std::to_string(++nonce_));
  {
    std::lock_guard lock(mu_);
    write_outstanding_ = true;
  }
  StartWrite(&outgoing_);
}

void WorkerStream::AskForAttention() { callbacks_.attention(shared_from_this()); }

void WorkerStream::OnReadDone(bool ok) {
  {
    std::lock_guard lock(mu_);
    read_outstanding_ = false;
    if (!ok) {
      peer_gone_ = true;
    } else if (!first_message_) {
      first_message_ = incoming_;
    } else {
      // Past the hello, the pusher wrote hello_ and serial_ before it started this read, and
      // starts the next only after read_wanted_ is set, so incoming_ is still this message.
      if (incoming_.has_ack()) {
        registry_->Acked(key(), incoming_.ack().version());
      } else if (incoming_.has_nack()) {
        spdlog::warn("worker {} refused version {}: {}", hello_.worker_id(),
                     incoming_.nack().version(), incoming_.nack().error());
        registry_->Nacked(key(), incoming_.nack().version(), incoming_.nack().error());
      }
      read_wanted_ = true;
    }
  }
  AskForAttention();
}

void WorkerStream::OnWriteDone(bool ok) {
  {
    std::lock_guard lock(mu_);
    write_outstanding_ = false;
    if (!ok) peer_gone_ = true;
  }
  AskForAttention();
}

void WorkerStream::OnCancel() {
  {
    std::lock_guard lock(mu_);
    peer_gone_ = true;
  }
  AskForAttention();
}

void WorkerStream::OnDone() {
  if (serial_ != 0) {
    registry_->Disconnected(key(), serial_, end_reason_);
    spdlog::info("worker {} left gateway \"{}\"", hello_.worker_id(), hello_.gateway());
  }
  callbacks_.done(this);
  std::shared_ptr<WorkerStream> last_reference = std::move(self_);
}

}  // namespace apim::controlplane

#include "controlplane/config_discovery_service.h"

#include <spdlog/spdlog.h>

#include "common/str_cat.h"

namespace apim::controlplane {
namespace {

using Clock = std::chrono::steady_clock;

grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the control plane is shutting down; try again later");
}

}  // namespace

ConfigDiscoveryService::ConfigDiscoveryService(store::Store& store, WorkerRegistry& registry,
                                               DiscoveryLimits limits)
    : store_(store), registry_(registry), limits_(limits), pusher_([this] { Push(); }) {}

ConfigDiscoveryService::~ConfigDiscoveryService() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  pusher_.join();
}

void ConfigDiscoveryService::NotifyCommitted() {
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  wake_.notify_all();
}

void ConfigDiscoveryService::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  wake_.notify_all();
}

WorkerStream::Callbacks ConfigDiscoveryService::StreamCallbacks() {
  return {
      .attention =
          [this](std::shared_ptr<WorkerStream> stream) {
            {
              std::lock_guard lock(mu_);
              need_attention_.push_back(std::move(stream));
            }
            wake_.notify_all();
          },
      .done =
          [this](WorkerStream* stream) {
            std::lock_guard lock(mu_);
            std::erase_if(streams_, [&](const auto& held) { return held.get() == stream; });
          },
  };
}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::ControlPlaneMessage>* ConfigDiscoveryService::Stream(
    grpc::CallbackServerContext* context) {
  std::unique_lock lock(mu_);
  if (shutting_down_) {
    lock.unlock();
    return WorkerStream::Refuse(*context, StreamCallbacks(), ShuttingDown());
  }
  if (awaiting_hello_ >= limits_.max_streams_awaiting_hello) {
    lock.unlock();
    spdlog::warn("stream from {} refused: {} streams are already waiting to say hello",
                 context->peer(), limits_.max_streams_awaiting_hello);
    return WorkerStream::Refuse(
        *context, StreamCallbacks(),
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "too many streams are waiting to say hello; send the hello at once"));
  }
  ++awaiting_hello_;
  std::shared_ptr<WorkerStream> stream = WorkerStream::Create(
      *context, registry_, StreamCallbacks(), Clock::now() + limits_.hello_timeout);
  streams_.insert(stream);
  lock.unlock();
  // Only now that the pusher can find it: the read may complete at once.
  stream->ReadHello();
  return stream.get();
}

void ConfigDiscoveryService::Push() {
  // Hello deadlines are checked this often; everything else wakes the pusher.
  constexpr auto kSweepInterval = std::chrono::milliseconds(250);
  uint64_t seen_generation = 0;
  auto next_sweep = Clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const bool offer = generation_ != seen_generation;
    seen_generation = generation_;
    const bool shutting_down = shutting_down_;
    const bool sweep = offer || shutting_down || Clock::now() >= next_sweep;
    std::vector<std::shared_ptr<WorkerStream>> streams = std::move(need_attention_);
    need_attention_.clear();
    if (sweep) {
      streams.insert(streams.end(), streams_.begin(), streams_.end());
      next_sweep = Clock::now() + kSweepInterval;
    }
    lock.unlock();

    PushRound round(store_);
    const auto now = Clock::now();
    size_t no_longer_awaiting = 0;
    for (const std::shared_ptr<WorkerStream>& stream : streams) {
      const bool was_awaiting = stream->awaiting_hello();
      if (shutting_down) {
        stream->End(ShuttingDown());
      } else {
        stream->Advance(round, offer, now);
      }
      if (was_awaiting && !stream->awaiting_hello()) ++no_longer_awaiting;
    }
    streams.clear();  // Released without the lock: the last reference may destroy a stream.

    lock.lock();
    awaiting_hello_ -= no_longer_awaiting;
    wake_.wait_until(lock, next_sweep, [&] {
      return stopping_ || generation_ != seen_generation || !need_attention_.empty() ||
             shutting_down_ != shutting_down;
    });
  }
}

}  // namespace apim::controlplane

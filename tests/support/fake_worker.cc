#include "tests/support/fake_worker.h"

#include <gtest/gtest.h>

#include <chrono>

namespace apim::testing {

FakeWorker::FakeWorker(const std::string& address, const std::string& token,
                       const std::string& gateway)
    : stub_(v1::ConfigDiscovery::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
  context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  stream_ = stub_->Stream(&context_);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_gateway(gateway);
  hello.mutable_hello()->set_gateway_token(token);
  hello.mutable_hello()->set_worker_id("fake");
  EXPECT_TRUE(stream_->Write(hello));
}

FakeWorker::~FakeWorker() {
  stream_->WritesDone();
  context_.TryCancel();
  (void)stream_->Finish();
}

v1::Snapshot FakeWorker::Next() {
  v1::ControlPlaneMessage message;
  EXPECT_TRUE(stream_->Read(&message));
  v1::WorkerMessage ack;
  ack.mutable_ack()->set_version(message.snapshot().version());
  ack.mutable_ack()->set_nonce(message.nonce());
  EXPECT_TRUE(stream_->Write(ack));
  return message.snapshot();
}

}  // namespace apim::testing

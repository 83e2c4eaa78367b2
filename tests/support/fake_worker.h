#pragma once
// A worker's side of ConfigDiscovery over gRPC, without a data plane: it joins a gateway and
// hands out the snapshots the control plane pushes, acknowledging each, so control-plane tests
// see exactly what workers get.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "apim/v1/config_discovery.grpc.pb.h"

namespace apim::testing {

class FakeWorker {
 public:
  // Dials `address` (plaintext) and says hello for `gateway` with its worker token. The stream
  // ends after 60 s at the latest.
  FakeWorker(const std::string& address, const std::string& token,
             const std::string& gateway = "edge");
  ~FakeWorker();
  FakeWorker(const FakeWorker&) = delete;
  FakeWorker& operator=(const FakeWorker&) = delete;

  // The next snapshot pushed, acknowledged (a failed read fails the test and returns an empty
  // snapshot).
  v1::Snapshot Next();

 private:
  std::unique_ptr<v1::ConfigDiscovery::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::ControlPlaneMessage>> stream_;
};

}  // namespace apim::testing

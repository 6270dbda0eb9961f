// A C++ PredictionService whose Predict sleeps like one MobileNetV3 inference and answers a
// [1, 1000] float tensor: the gRPC stack TF-Serving is built on, with no model behind it.
// Built and run by `python -m benchmarks.grpc_native`; prints its port, then serves.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "tfs_predict.grpc.pb.h"

namespace serving = tensorflow::serving;

class SleepingService final : public serving::PredictionService::Service {
 public:
  explicit SleepingService(std::chrono::microseconds sleep) : sleep_(sleep) {}

  grpc::Status Predict(grpc::ServerContext*, const serving::PredictRequest*,
                       serving::PredictResponse* response) override {
    std::this_thread::sleep_for(sleep_);
    auto& output = (*response->mutable_outputs())["probabilities"];
    output.set_dtype(tensorflow_wire::DT_FLOAT);
    output.mutable_tensor_shape()->add_dim()->set_size(1);
    output.mutable_tensor_shape()->add_dim()->set_size(1000);
    output.set_tensor_content(std::string(1000 * sizeof(float), '\0'));
    return grpc::Status::OK;
  }

 private:
  std::chrono::microseconds sleep_;
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: server SLEEP_MICROSECONDS\n";
    return 2;
  }
  SleepingService service{std::chrono::microseconds(std::stol(argv[1]))};
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  std::cout << port << std::endl;
  server->Wait();
}

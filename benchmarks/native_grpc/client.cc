// A C++ client that sends one 224x224x3 uint8 image per Predict call, back to back, and prints
// the median round trip in milliseconds. Built and run by `python -m benchmarks.grpc_native`.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "tfs_predict.grpc.pb.h"

namespace serving = tensorflow::serving;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: client TARGET MODEL_NAME COUNT\n";
    return 2;
  }
  auto stub = serving::PredictionService::NewStub(
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  serving::PredictRequest request;
  request.mutable_model_spec()->set_name(argv[2]);
  auto& image = (*request.mutable_inputs())["images"];
  image.set_dtype(tensorflow_wire::DT_UINT8);
  for (int size : {1, 224, 224, 3}) image.mutable_tensor_shape()->add_dim()->set_size(size);
  image.set_tensor_content(std::string(224 * 224 * 3, '\0'));

  const int count = std::stoi(argv[3]), warmup = 20;
  std::vector<double> samples;
  for (int i = 0; i < warmup + count; ++i) {
    grpc::ClientContext context;
    serving::PredictResponse response;
    const auto start = std::chrono::steady_clock::now();
    const grpc::Status status = stub->Predict(&context, request, &response);
    const auto end = std::chrono::steady_clock::now();
    if (!status.ok()) {
      std::cerr << "Predict failed: " << status.error_message() << "\n";
      return 1;
    }
    if (i >= warmup) samples.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  std::cout << samples[samples.size() / 2] << std::endl;
}

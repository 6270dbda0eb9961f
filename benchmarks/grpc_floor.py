"""The Python gRPC floor: latency grpcio adds around a handler, with no model involved.

    .venv/bin/python -m benchmarks.grpc_floor

A sync grpcio server (as models.server uses) whose Predict returns at once or after sleeping
10 ms (about one MobileNetV3 inference), with an empty or a 150 KB (one 224x224x3 image) request.
"Minus sleep" is what gRPC itself costs; the model server's own handler adds ~0.1 ms to it.
"""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import numpy as np

from protocol import tensors
from protocol.generated import tfs_predict_pb2 as pb
from protocol.generated import tfs_predict_pb2_grpc as pbg


class Sleeper(pbg.PredictionServiceServicer):
    """Predict sleeps (standing in for the inference), then answers [1, 1000] probabilities."""

    def __init__(self, sleep_s: float):
        self.sleep_s = sleep_s
        self.response = pb.PredictResponse(outputs={"probabilities": tensors.to_proto(np.zeros((1, 1000), np.float32))})

    def Predict(self, request, context):
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return self.response


def main() -> None:
    image = pb.PredictRequest(inputs={"images": tensors.to_proto(np.zeros((1, 224, 224, 3), np.uint8))})
    print("| request, handler | p50 ms | minus the handler's sleep |\n|---|---|---|")
    for label, sleep_s, request in [
        ("empty, instant", 0, pb.PredictRequest()),
        ("150 KB, instant", 0, image),
        ("empty, 10 ms", 0.01, pb.PredictRequest()),
        ("150 KB, 10 ms", 0.01, image),
    ]:
        server = grpc.server(futures.ThreadPoolExecutor(4))
        pbg.add_PredictionServiceServicer_to_server(Sleeper(sleep_s), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pbg.PredictionServiceStub(channel)
            for _ in range(20):
                stub.Predict(request)
            samples = []
            for _ in range(300):
                start = time.perf_counter()
                stub.Predict(request)
                samples.append(time.perf_counter() - start)
        p50 = float(np.median(samples)) * 1000
        print(f"| {label} | {p50:.2f} | {p50 - sleep_s * 1000:.2f} |")
        server.stop(None)


if __name__ == "__main__":
    main()

"""Model server memory against the batch size of gRPC Predict calls.

    .venv/bin/python -m benchmarks.batch_memory --models BASE [--env NAME=VALUE ...]

Starts ``python -m models.server`` (default settings, plus ``--env``) on ``BASE/mobilenet_v3_large``
and sends it zero-filled uint8 batches over gRPC: 1, 16 and 64 images alone, 8 clients sending 64 at
once, then one image again. After each step it prints the server's RSS and its peak (VmHWM): a
LiteRT interpreter's arena grows with the largest batch it has run and keeps that size.
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np

from benchmarks.process_accounting import resident_bytes
from local_mode.processes import ModelServer
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc

MODEL = "mobilenet_v3_large"


def _memory(pid: int) -> str:
    """Table cells: RSS now, its peak (MiB)."""
    return " | ".join(f"{held / 2**20:.0f}" for held in resident_bytes(pid))


def run(base: Path, env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = ModelServer(base, MODEL, Path(scratch) / "server.log", **env).start()
        try:
            pid = server.process.pid
            channel = grpc.insecure_channel(
                f"127.0.0.1:{server.grpc_port}", options=[("grpc.max_send_message_length", 64 << 20)]
            )
            stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)

            def predict(images: int) -> str:
                request = tfs_predict_pb2.PredictRequest()
                request.model_spec.name = MODEL
                request.inputs["images"].CopyFrom(tensors.to_proto(np.zeros((images, 224, 224, 3), np.uint8)))
                try:
                    stub.Predict(request, timeout=120)
                    return "OK"
                except grpc.RpcError as error:
                    return f"{error.code().name}: {error.details()[:70]}"

            print(f"env {env or 'default'}\n\n| step | answers | RSS MiB | peak MiB |\n|---|---|---|---|")
            print(f"| idle | | {_memory(pid)} |")
            for step, sizes in (
                ("1 image", [1]),
                ("16 images", [16]),
                ("64 images", [64]),
                ("8 clients x 64 images", [64] * 8),
                ("1 image again", [1]),
            ):
                with ThreadPoolExecutor(len(sizes)) as pool:
                    answers = sorted(set(pool.map(predict, sizes)))
                print(f"| {step} | {'; '.join(answers)} | {_memory(pid)} |")
            channel.close()
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", type=Path, required=True, help=f"TF-Serving style base folder holding {MODEL}")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the model server (repeatable)")
    args = parser.parse_args()
    run(args.models, dict(item.split("=", 1) for item in args.env))


if __name__ == "__main__":
    main()

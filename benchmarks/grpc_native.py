"""Which side of a gRPC call costs what: Python (grpcio) and C++ (grpc++) clients and servers.

    .venv/bin/python -m benchmarks.grpc_native [--rounds 3]

Needs a C++ toolchain and gRPC for C++ (Debian: apt-get install g++ pkg-config libgrpc++-dev
protobuf-compiler-grpc). Builds benchmarks/native_grpc/*.cc against our own protos into
build/native_grpc/, then times one Predict with a 150 KB image (1x224x224x3 uint8) for every
client/server pair. Both servers sleep 10 ms per call (about one MobileNetV3 inference) and answer
a [1, 1000] float tensor; "added" is the round trip minus those 10 ms, so it still includes the
sleep's own overshoot (printed). The pairs are timed in turn, ``--rounds`` times over, and each
cell is the median of its rounds, so a slow spell on this shared machine does not land on one pair.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np

from benchmarks.grpc_floor import Sleeper
from benchmarks.timing import ms, timed
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "benchmarks" / "native_grpc"
PROTOS = ROOT / "protocol" / "protos"
BUILD = ROOT / "build" / "native_grpc"
SLEEP_S = 0.010
COUNT = 300
MODEL = "mobilenet_v3_large"


def build() -> Path:
    """Generate C++ code from our protos and compile the server and the client; return the folder."""
    missing = [tool for tool in ("g++", "pkg-config", "protoc", "grpc_cpp_plugin") if shutil.which(tool) is None]
    if missing or subprocess.run(["pkg-config", "--exists", "grpc++", "protobuf"]).returncode != 0:
        sys.exit("needs g++ and gRPC for C++: apt-get install g++ pkg-config libgrpc++-dev protobuf-compiler-grpc")
    BUILD.mkdir(parents=True, exist_ok=True)
    protos = sorted(PROTOS.glob("*.proto"))
    subprocess.run(
        [
            "protoc",
            f"-I{PROTOS}",
            f"--cpp_out={BUILD}",
            f"--grpc_out={BUILD}",
            f"--plugin=protoc-gen-grpc={shutil.which('grpc_cpp_plugin')}",
            *map(str, protos),
        ],
        check=True,
    )
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "grpc++", "protobuf"], check=True, capture_output=True, text=True
    ).stdout.split()
    generated = [str(BUILD / f"{p.stem}.pb.cc") for p in protos] + [str(BUILD / "tfs_predict.grpc.pb.cc")]
    for program in ("server", "client"):
        subprocess.run(
            [
                "g++",
                "-O2",
                "-std=c++17",
                f"-I{BUILD}",
                "-o",
                str(BUILD / program),
                str(SOURCES / f"{program}.cc"),
                *generated,
                *flags,
            ],
            check=True,
        )
    return BUILD


def serve_python(sleep_s: float) -> None:
    """The Python server of the pair: a sync grpcio server on a thread pool, as models.server uses."""
    server = grpc.server(futures.ThreadPoolExecutor(4))
    tfs_predict_pb2_grpc.add_PredictionServiceServicer_to_server(Sleeper(sleep_s), server)
    print(server.add_insecure_port("127.0.0.1:0"), flush=True)
    server.start()
    server.wait_for_termination()


def python_client(target: str) -> float:
    image = np.zeros((1, 224, 224, 3), np.uint8)
    request = tfs_predict_pb2.PredictRequest(
        model_spec=tfs_predict_pb2.ModelSpec(name=MODEL), inputs={"images": tensors.to_proto(image)}
    )
    with grpc.insecure_channel(target) as channel:
        stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
        return ms(timed(lambda: stub.Predict(request, timeout=30), COUNT, warmup=20), 50)


def native_client(binary: Path, target: str) -> float:
    result = subprocess.run([str(binary), target, MODEL, str(COUNT)], check=True, capture_output=True, text=True)
    return float(result.stdout)


def started(command: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, f"127.0.0.1:{int(process.stdout.readline())}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-python", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_python:
        serve_python(SLEEP_S)
        return
    binaries = build()
    overshoot = ms(timed(lambda: time.sleep(SLEEP_S), 100), 50) - SLEEP_S * 1000
    print(f"Handler: sleep 10 ms (Python's time.sleep overshoots by {overshoot:.2f} ms here)\n")
    servers = {
        "C++": [str(binaries / "server"), str(int(SLEEP_S * 1e6))],
        "Python": [sys.executable, "-m", "benchmarks.grpc_native", "--serve-python"],
    }
    clients = {"C++": lambda target: native_client(binaries / "client", target), "Python": python_client}
    rounds: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for server_name, command in servers.items():
            process, target = started(command)
            try:
                for client_name, client in clients.items():
                    rounds.setdefault((client_name, server_name), []).append(client(target))
            finally:
                process.kill()
                process.wait()
    print("| client -> server | round trip p50 ms | added p50 ms (each round) |\n|---|---|---|")
    for (client_name, server_name), p50s in rounds.items():
        p50 = float(np.median(p50s))
        each = ", ".join(f"{p - SLEEP_S * 1000:.2f}" for p in p50s)
        print(f"| {client_name} -> {server_name} | {p50:.2f} | {p50 - SLEEP_S * 1000:.2f} ({each}) |")


if __name__ == "__main__":
    main()

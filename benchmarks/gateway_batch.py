"""Images per second through the real gateway: N single-image requests against one batch of N.

    .venv/bin/python -m benchmarks.gateway_batch [--rounds 5] [--sizes 2,4,8,16]

The gateway and our LiteRT model server (the real-weights EfficientNet-Lite0 of ../shared, one
interpreter) run as processes on 127.0.0.1; requests are sent one after the other, so the figures
are latency, not concurrency. Each round sends N photos as N requests, then as one batch request;
the table gives the median over the rounds. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from local_mode.processes import Gateway, ModelServer, serve_tflite
from tests.conftest import SHARED

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def _timed(send) -> float:
    started = time.perf_counter()
    send()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="2,4,8,16", help="batch sizes, each at least 2")
    args = parser.parse_args()
    photos = [(SHARED / "images" / f"{name}.jpg").read_bytes() for name in PHOTOS]
    sizes = [int(size) for size in args.sizes.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    serve_tflite(scratch, "efficientnet", SHARED / "models" / "efficientnet-lite0" / "model.tflite")
    with ModelServer(
        scratch, "efficientnet", scratch / "server.log", INTERPRETERS="1", INTERPRETER_THREADS="2"
    ) as server:
        server.start()
        with Gateway(
            scratch / "gateway.log",
            PRIMARY_URL=f"grpc://{server.grpc_target}",
            PRIMARY_MODEL="efficientnet",
            REQUEST_DEADLINE_MS="20000",
            PRIMARY_TIMEOUT_MS="20000",
        ) as gateway:
            gateway.start()
            session = requests.Session()
            url = f"{gateway.url}/classify"

            def single(data: bytes) -> None:
                assert session.post(url, files={"file": data}, timeout=30).status_code == 200

            def batch(datas: list[bytes]) -> None:
                response = session.post(url, files=[("file", data) for data in datas], timeout=60)
                assert response.status_code == 200 and len(response.json()["results"]) == len(datas)

            batch(photos)  # warm up both paths
            single(photos[0])
            print("| images | N single requests (ms) | one batch request (ms) | images/s single | images/s batch |")
            print("|---:|---:|---:|---:|---:|")
            for n in sizes:
                datas = [photos[i % len(photos)] for i in range(n)]
                singles = [_timed(lambda d=datas: [single(x) for x in d]) for _ in range(args.rounds)]
                batches = [_timed(lambda d=datas: batch(d)) for _ in range(args.rounds)]
                s, b = statistics.median(singles), statistics.median(batches)
                print(f"| {n} | {s * 1000:.0f} | {b * 1000:.0f} | {n / s:.1f} | {n / b:.1f} |")


if __name__ == "__main__":
    main()

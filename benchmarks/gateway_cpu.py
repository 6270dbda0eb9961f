"""Gateway CPU time per request, excluding the model call. Prints a Markdown table.

    .venv/bin/python -m benchmarks.gateway_cpu [--photo ../shared/images/astronaut.jpg]

Two views: (1) the hot path in-process (decode with draft, resize/crop, tensor encoding, top-k,
JSON) timed with thread CPU time, p50/p90 over many runs; (2) the real gateway process serving
multipart uploads through waitress and Flask to a real model server, CPU seconds of the gateway
process (/proc) divided by requests: everything the gateway spends, minus the model's own process.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from gateway.imaging import ResizePolicy, decode, to_tensor
from gateway.labels import load_labels, top_k
from gateway.settings import DEFAULT_LABELS
from local_mode.processes import Gateway, ModelServer, serve_tflite
from protocol import tensors

SIZES = {"4 MP (2448x1632)": (2448, 1632), "0.3 MP (640x480)": (640, 480)}
TICKS = os.sysconf("SC_CLK_TCK")


def make_jpeg(photo: Path | None, size: tuple[int, int]) -> bytes:
    if photo and photo.exists():
        image = Image.open(photo).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    else:  # synthetic photo-like content when ../shared is absent
        rng = np.random.default_rng(0)
        coarse = rng.integers(0, 256, (size[1] // 64, size[0] // 64, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def hot_path(data: bytes, labels: list[str], runs: int) -> list[float]:
    policy = ResizePolicy(232)
    probabilities = np.random.default_rng(0).random(1000).astype(np.float32)
    samples = []
    for _ in range(runs):
        start = time.thread_time()
        batch = to_tensor(decode(data, 50_000_000, policy.resize_shorter), policy)
        tensors.to_proto(batch).SerializeToString()
        json.dumps({"predictions": top_k(probabilities, labels, 5)})
        samples.append(time.thread_time() - start)
    return samples


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def served(data: bytes, model_tflite: Path, requests_count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        base = serve_tflite(Path(tmp), "fallback", model_tflite)
        with (
            ModelServer(base, "fallback", Path(tmp) / "model.log") as server,
            Gateway(
                Path(tmp) / "gw.log", FALLBACK_URL=f"grpc://{server.grpc_target}", FALLBACK_MODEL="fallback"
            ) as gateway,
        ):
            server.start()
            gateway.start()
            session = requests.Session()

            def send() -> None:
                session.post(
                    f"{gateway.url}/classify", files={"file": ("p.jpg", data, "image/jpeg")}, timeout=30
                ).raise_for_status()

            for _ in range(10):
                send()
            cpu_before, wall_before = process_cpu_s(gateway.process.pid), time.perf_counter()
            for _ in range(requests_count):
                send()
            cpu = (process_cpu_s(gateway.process.pid) - cpu_before) / requests_count
            wall = (time.perf_counter() - wall_before) / requests_count
    return cpu * 1000, wall * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=Path("../shared/images/astronaut.jpg"))
    parser.add_argument("--model", type=Path, default=Path("build/models/mobilenet_v3_large/1/model.tflite"))
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    labels = load_labels(DEFAULT_LABELS)
    print("| JPEG | hot path CPU p50 / p90 ms | gateway process CPU per request (mean) ms | wall per request ms |")
    print("|---|---|---|---|")
    for name, size in SIZES.items():
        data = make_jpeg(args.photo, size)
        samples = np.array(hot_path(data, labels, args.runs)) * 1000
        cpu, wall = served(data, args.model, args.runs)
        print(
            f"| {name}, {len(data) / 1e6:.2f} MB | {np.percentile(samples, 50):.2f} / "
            f"{np.percentile(samples, 90):.2f} | {cpu:.2f} | {wall:.1f} |"
        )


if __name__ == "__main__":
    main()

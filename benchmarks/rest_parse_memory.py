"""Memory and time to parse a 48 MB TF-Serving REST predict body (a batch of 64 images).

    .venv/bin/python -m benchmarks.rest_parse_memory [--models BASE]

Each parser runs in a fresh process; the figure is the growth of its peak RSS (VmHWM) while parsing.
With ``--models``, the body (then half of it, alone and from 4 clients at once) is also sent to a
model server (``python -m models.server``, default settings) serving ``BASE/mobilenet_v3_large``, and
the server process's peak RSS is printed after each step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from benchmarks.process_accounting import resident_bytes
from local_mode.processes import ModelServer

_PARSE = """
import json, pathlib, sys, time
import numpy as np
from models.server import json_tensor, rest
from models.server.model import TensorSpec
def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) * 1024
body = pathlib.Path(sys.argv[1]).read_bytes()
spec = TensorSpec("images", "images", np.dtype("uint8"), (-1, 224, 224, 3))
loads = json.loads if sys.argv[2] == "json.loads" else json_tensor.loads
before, started = hwm(), time.perf_counter()
batch = rest._read_batch(loads(body), spec)
print(f"| {sys.argv[2]} | {(hwm() - before) / 2**20:.0f} | {time.perf_counter() - started:.2f} |")
"""


def serve(batch: np.ndarray, scratch: Path, base: Path, model: str) -> None:
    """Send the batch to a model server with its defaults (MEMORY_BUDGET_BYTES among them), then
    half of it, then half of it from 4 clients at once; print the answers and the server's peak RSS."""
    full = json.dumps({"instances": batch.tolist()}).encode()
    half = json.dumps({"instances": batch[: len(batch) // 2].tolist()}).encode()
    server = ModelServer(base, model, log=scratch / "server.log")
    with server:
        server.start()
        assert server.process is not None
        pid = server.process.pid
        url = f"{server.rest}/v1/models/{model}:predict"

        def post(body: bytes) -> str:
            response = requests.post(url, data=body, timeout=300)
            answer = response.json()
            return (
                f"{response.status_code} ({len(answer['predictions'])} predictions)"
                if response.ok
                else f"{response.status_code} {answer['error'][:60]!r}"
            )

        print(
            f"\nmodel server ({model}), peak RSS (VmHWM) after each step:\n\n| step | answers | peak MiB |\n|---|---|---|"
        )
        print(f"| idle | | {resident_bytes(pid)[1] / 2**20:.0f} |")
        print(f"| {len(full) / 2**20:.1f} MiB body, alone | {post(full)} | {resident_bytes(pid)[1] / 2**20:.0f} |")
        print(f"| {len(half) / 2**20:.1f} MiB body, alone | {post(half)} | {resident_bytes(pid)[1] / 2**20:.0f} |")
        with ThreadPoolExecutor(4) as pool:
            answers = sorted(pool.map(post, [half] * 4))
        print(
            f"| {len(half) / 2**20:.1f} MiB body, 4 at once | {'; '.join(answers)} | {resident_bytes(pid)[1] / 2**20:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", type=Path, help="TF-Serving style base folder holding mobilenet_v3_large")
    args = parser.parse_args()
    batch = np.random.default_rng(0).integers(0, 256, (64, 224, 224, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "body.json"
        path.write_text(json.dumps({"instances": batch.tolist()}))
        print(f"body: {path.stat().st_size / 2**20:.1f} MiB\n\n| parser | peak growth (MiB) | seconds |\n|---|---|---|")
        for parser_name in ("json.loads", "json_tensor.loads"):
            subprocess.run([sys.executable, "-c", _PARSE, str(path), parser_name], check=True)
        if args.models is not None:
            serve(batch, Path(scratch), args.models, "mobilenet_v3_large")


if __name__ == "__main__":
    main()

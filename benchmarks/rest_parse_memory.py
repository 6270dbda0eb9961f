"""Memory and time to parse a 48 MB TF-Serving REST predict body (a batch of 64 images).

    .venv/bin/python -m benchmarks.rest_parse_memory [--models BASE]

Each parser runs in a fresh process; the figure is the growth of its peak RSS (VmHWM) while parsing.
With ``--models``, the body is also sent to a model server (``python -m models.server``) serving
``BASE/mobilenet_v3_large``, and the server process's peak RSS is printed before and after it answers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import requests

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


def _kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith(field)).split()[1])


def serve(body: Path, base: Path, model: str) -> None:
    """Send ``body`` to a model server and print its peak RSS before and after."""
    with ModelServer(base, model, log=body.parent / "server.log").start() as server:
        assert server.process is not None
        pid = server.process.pid
        idle = _kib(pid, "VmHWM:")
        response = requests.post(f"{server.rest}/v1/models/{model}:predict", data=body.read_bytes(), timeout=300)
        response.raise_for_status()
        answered = len(response.json()["predictions"])
        print(
            f"\nmodel server ({model}): {answered} predictions; peak RSS "
            f"{idle / 1024:.0f} MiB idle, {_kib(pid, 'VmHWM:') / 1024:.0f} MiB after the request"
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
            serve(path, args.models, "mobilenet_v3_large")


if __name__ == "__main__":
    main()

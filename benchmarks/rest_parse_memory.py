"""Memory and time to parse a 48 MB TF-Serving REST predict body (a batch of 64 images).

    .venv/bin/python -m benchmarks.rest_parse_memory

Each parser runs in a fresh process; the figure is the growth of its peak RSS (VmHWM) while parsing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

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


def main() -> None:
    batch = np.random.default_rng(0).integers(0, 256, (64, 224, 224, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "body.json"
        path.write_text(json.dumps({"instances": batch.tolist()}))
        print(f"body: {path.stat().st_size / 2**20:.1f} MiB\n\n| parser | peak growth (MiB) | seconds |\n|---|---|---|")
        for parser in ("json.loads", "json_tensor.loads"):
            subprocess.run([sys.executable, "-c", _PARSE, str(path), parser], check=True)


if __name__ == "__main__":
    main()

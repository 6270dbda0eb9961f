"""Gateway memory under hostile uploads: RSS after each of several identical passes and the peak.

    .venv/bin/python -m benchmarks.hostile_rss [--passes 3] [--uploads 300] [--env MALLOC_ARENA_MAX=2]

Starts a gateway process whose backends are not listening (decoding, the memory being measured,
happens before any model call), sends the same corpus of hostile uploads (tests/hostile_images.py)
from 4 threads per pass, and prints the process's RSS after each pass and its peak (VmHWM).
Issue 14 saw 85 -> 217 -> 578 -> 942 MB over three such passes.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

from benchmarks.process_accounting import resident_bytes
from local_mode.processes import Gateway, free_port
from tests.hostile_images import corpus


def run(passes: int, uploads: int, env: dict[str, str]) -> None:
    data = corpus(uploads)
    with tempfile.TemporaryDirectory() as scratch:
        gateway = Gateway(
            Path(scratch) / "gateway.log",
            PRIMARY_URL=f"grpc://127.0.0.1:{free_port()}",
            PRIMARY_MODEL="m",
            FALLBACK_URL=f"grpc://127.0.0.1:{free_port()}",
            FALLBACK_MODEL="f",
            BREAKER_COOLDOWN_MS="600000",
            **env,
        ).start()
        try:
            process = psutil.Process(gateway.process.pid)
            print(f"env {env or 'default'}: idle RSS {process.memory_info().rss / 2**20:.0f} MiB")
            session = requests.Session()

            def send(upload: bytes) -> int:
                return session.post(
                    f"{gateway.url}/classify", data=upload, headers={"Content-Type": "image/png"}, timeout=30
                ).status_code

            for number in range(1, passes + 1):
                started = time.monotonic()
                with ThreadPoolExecutor(4) as pool:
                    statuses = collections.Counter(pool.map(send, data))
                print(
                    f"pass {number}: {time.monotonic() - started:.1f} s, RSS {process.memory_info().rss / 2**20:.0f} "
                    f"MiB, peak {resident_bytes(process.pid)[1] / 2**20:.0f} MiB, statuses {dict(sorted(statuses.items()))}"
                )
        finally:
            gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway process")
    args = parser.parse_args()
    run(args.passes, args.uploads, dict(item.split("=", 1) for item in args.env))


if __name__ == "__main__":
    main()

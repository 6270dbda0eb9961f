"""How fast a bad canary is rolled back, and what clients see meanwhile (docs/reliability.md).

    python -m benchmarks.canary_rollback --models build/models [--requests 200]

For each canary (a good one: the stable model again; one whose answers the server refuses; one
that always answers class 7; one ~0.7 s slower), our model server holds the stable and canary
versions under those labels and a gateway with the default canary settings (share 0.1, window
60 s, 20 canary calls before a verdict) takes sequential requests until the canary is rolled back
or ``--requests`` have been sent. Printed: requests and canary calls until the rollback, seconds,
the reason, failed and fallback answers, client p50/p95.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from local_mode.processes import Gateway, wait_until
from tests.gateway.canary_models import canary_server, write_canary_models

MODEL = "mobilenet_v3_large"


def run(kind: str, stable: Path, canary: Path, jpeg: bytes, count: int, work: Path) -> str:
    server = canary_server(work / kind, MODEL, stable, canary, work / f"{kind}-server.log")
    with server:
        server.start()

        def both_available() -> bool:
            versions = requests.get(f"{server.rest}/v1/models/{MODEL}", timeout=2).json()["model_version_status"]
            return [v["state"] for v in versions] == ["AVAILABLE", "AVAILABLE"]

        wait_until(both_available, 60, "both versions")
        env = {"PRIMARY_URL": f"grpc://{server.grpc_target}", "PRIMARY_MODEL": MODEL, "CANARY_SHARE": "0.1"}
        with Gateway(work / f"{kind}-gateway.log", **env) as gateway:
            gateway.start()
            latencies, failed, fallbacks, until = [], 0, 0, None
            started = time.monotonic()
            for sent in range(1, count + 1):
                begin = time.monotonic()
                answer = requests.post(f"{gateway.url}/classify", files={"file": ("p.jpg", jpeg)}, timeout=10)
                latencies.append(time.monotonic() - begin)
                failed += answer.status_code != 200
                fallbacks += answer.status_code == 200 and answer.json()["fallback"]
                canary_state = requests.get(f"{gateway.url}/readyz", timeout=5).json()["canary"]
                if canary_state["state"] == "rolled_back":
                    until = (
                        sent,
                        canary_state["canary"]["requests"],
                        time.monotonic() - started,
                        canary_state["reason"],
                    )
                    break
    p50, p95 = (np.percentile(latencies, q) * 1000 for q in (50, 95))
    if until is None:
        return (
            f"| {kind} | not rolled back after {count} | - | - | - | {failed} | {fallbacks} | {p50:.0f} / {p95:.0f} |"
        )
    sent, calls, seconds, reason = until
    return f"| {kind} | {sent} | {calls} | {seconds:.1f} | {reason} | {failed} | {fallbacks} | {p50:.0f} / {p95:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, required=True, help="an export holding mobilenet_v3_large/1")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    stable = args.models / MODEL / "1" / "model.tflite"
    jpeg = (Path(__file__).resolve().parent.parent / "tests" / "data" / "coffee.jpg").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bad = write_canary_models(work)
        print(
            "| canary | requests until rollback | canary calls | seconds | reason | failed | fallback | p50 / p95 ms |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for kind, canary in (
            ("good", stable),
            ("wrong_size", bad / "wrong_size.tflite"),
            ("constant", bad / "constant.tflite"),
            ("slow", bad / "slow.tflite"),
        ):
            print(run(kind, stable, canary, jpeg, args.requests, work), flush=True)


if __name__ == "__main__":
    main()

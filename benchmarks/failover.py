"""Failover figures on real processes. Prints Markdown.

    .venv/bin/python -m benchmarks.failover --models build/models

1. Time from killing the primary (SIGKILL) to the first fallback answer, under steady load.
2. Latency while the primary's breaker is open, against (a) the fallback's own latency (a direct
   gRPC call with the same tensor) and (b) a fallback-only gateway, all three interleaved: (a) is
   everything the gateway adds (HTTP, decode, resize), (b) is what the open breaker path adds.
3. p50/p99 during a primary hang (connection up, no answers), hedging off and on.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import requests

from benchmarks.timing import ms
from gateway.imaging import ResizePolicy, decode, to_tensor
from local_mode.processes import Gateway, ModelServer
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc
from tests.chaos.conftest import FALLBACK, GATEWAY_ENV, PRIMARY, run_load
from tests.fault_proxy import FaultProxy


def photo() -> bytes:
    import io

    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((640, 480), Image.Resampling.BICUBIC).save(buffer, format="JPEG")
    return buffer.getvalue()


def gateway_for(tmp: Path, name: str, primary: str, fallback: str, **env: str) -> Gateway:
    return Gateway(
        tmp / f"{name}.log",
        PRIMARY_URL=f"grpc://{primary}",
        PRIMARY_MODEL=PRIMARY,
        FALLBACK_URL=f"grpc://{fallback}",
        FALLBACK_MODEL=FALLBACK,
        **{**GATEWAY_ENV, **env},
    ).start()


def start_primary(models: Path, log: Path) -> ModelServer:
    """The int8 WRN-50-2 on our LiteRT server, as compose runs it."""
    return ModelServer(
        models, PRIMARY, log, MODEL_FILE="model_int8.tflite", INTERPRETERS="1", INTERPRETER_THREADS="2"
    ).start(timeout=120)


def death_to_fallback(models: Path, tmp: Path, fallback: ModelServer, image: bytes) -> list[str]:
    primary = start_primary(models, tmp / "primary-kill.log")
    gateway = gateway_for(tmp, "kill", primary.grpc_target, fallback.grpc_target)
    killed = []

    def kill(elapsed: float) -> None:
        if elapsed > 1.5 and not killed:
            primary.process.send_signal(signal.SIGKILL)
            killed.append(time.monotonic())

    started = time.monotonic()
    answers, _ = run_load(gateway.url, image, clients=2, duration_s=4, during=kill)
    gateway.stop()
    primary.stop()
    kill_at = killed[0] - started
    first = min(
        (a.at + a.latency_s for a in answers if a.body.get("fallback") and a.at + a.latency_s > kill_at),
        default=float("nan"),
    )
    spanning = [a.latency_s for a in answers if a.at <= kill_at <= a.at + a.latency_s]
    return [
        f"| primary killed under load (2 clients) | first fallback answer {1000 * (first - kill_at):.0f} ms "
        f"after the kill | requests in flight at the kill: {len(spanning)}, slowest "
        f"{1000 * max(spanning, default=0):.0f} ms |"
    ]


def breaker_open_overhead(tmp: Path, proxy: FaultProxy, fallback: ModelServer, image: bytes, count: int) -> list[str]:
    gateway = gateway_for(
        tmp, "open", proxy.target, fallback.grpc_target, BREAKER_COOLDOWN_MS="600000", BREAKER_MAX_COOLDOWN_MS="600000"
    )
    only = Gateway(
        tmp / "fallback-only.log", FALLBACK_URL=f"grpc://{fallback.grpc_target}", FALLBACK_MODEL=FALLBACK
    ).start()
    proxy.set_mode("refuse")
    session = requests.Session()
    url = f"{gateway.url}/classify"
    for _ in range(5):  # opens the breaker
        session.post(url, data=image, headers={"Content-Type": "image/jpeg"})
    stub = tfs_predict_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(fallback.grpc_target))
    tensor = to_tensor(decode(image, 10**8, 256), ResizePolicy(256))
    request = tfs_predict_pb2.PredictRequest(
        model_spec=tfs_predict_pb2.ModelSpec(name=FALLBACK), inputs={"images": tensors.to_proto(tensor)}
    )
    direct, through, alone, reasons = [], [], [], set()
    for _ in range(count):
        began = time.perf_counter()
        stub.Predict(request, timeout=5)
        direct.append(time.perf_counter() - began)
        began = time.perf_counter()
        body = session.post(url, data=image, headers={"Content-Type": "image/jpeg"}).json()
        through.append(time.perf_counter() - began)
        reasons.add(body["fallback_reason"])
        began = time.perf_counter()
        session.post(f"{only.url}/classify", data=image, headers={"Content-Type": "image/jpeg"}).raise_for_status()
        alone.append(time.perf_counter() - began)
    gateway.stop()
    only.stop()
    proxy.set_mode("pass")
    over_direct = [t - d for t, d in zip(through, direct, strict=True)]
    over_alone = [t - a for t, a in zip(through, alone, strict=True)]
    return [
        f"| breaker open ({', '.join(sorted(reasons))}), {count} requests, 0.3 MP JPEG | gateway "
        f"{ms(through, 50):.1f} / {ms(through, 99):.1f} ms p50/p99; fallback direct {ms(direct, 50):.1f} / "
        f"{ms(direct, 99):.1f} ms; fallback-only gateway {ms(alone, 50):.1f} / {ms(alone, 99):.1f} ms "
        f"| paired differences, over direct: p50 {ms(over_direct, 50):.1f}, p99 {ms(over_direct, 99):.1f} ms; over "
        f"the fallback-only gateway (the open breaker's cost): p50 {ms(over_alone, 50):.1f}, p99 "
        f"{ms(over_alone, 99):.1f} ms. Differences of percentiles: p99 {ms(through, 99) - ms(direct, 99):.1f} ms "
        f"over direct, {ms(through, 99) - ms(alone, 99):.1f} ms over the fallback-only gateway |"
    ]


def hang_latency(tmp: Path, proxy: FaultProxy, fallback: ModelServer, image: bytes) -> list[str]:
    rows = []
    for hedge in ("false", "true"):
        gateway = gateway_for(
            tmp,
            f"hang-{hedge}",
            proxy.target,
            fallback.grpc_target,
            HEDGE=hedge,
            HEDGE_MAX_FRACTION="0.1",
            HEDGE_MIN_MS="50",
            HEDGE_MAX_MS="300",
        )
        for _ in range(15):  # connections up and a latency history for the hedge delay
            requests.post(f"{gateway.url}/classify", data=image, headers={"Content-Type": "image/jpeg"})
        proxy.set_mode("hang")
        answers, sent = run_load(gateway.url, image, clients=4, duration_s=8)
        proxy.set_mode("pass")
        gateway.stop()
        latencies = [a.latency_s for a in answers if a.status == 200]
        rows.append(
            f"| primary hung, hedging {'on' if hedge == 'true' else 'off'}, 4 clients x 8 s "
            f"| {len(latencies)}/{sent} answered, p50 {ms(latencies, 50):.0f} ms, p99 {ms(latencies, 99):.0f} ms,"
            f" max {1000 * max(latencies):.0f} ms | hedged answers: "
            f"{sum(1 for a in answers if a.body.get('hedged'))} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("build/models"))
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    image = photo()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        fallback = ModelServer(args.models, FALLBACK, tmp / "fallback.log", INTERPRETERS="1").start()
        primary = start_primary(args.models, tmp / "primary.log")
        proxy = FaultProxy(primary.grpc_port)
        rows = death_to_fallback(args.models, tmp, fallback, image)
        rows += breaker_open_overhead(tmp, proxy, fallback, image, args.count)
        rows += hang_latency(tmp, proxy, fallback, image)
        proxy.close()
        primary.stop()
        fallback.stop()
    print("| scenario | measured | notes |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

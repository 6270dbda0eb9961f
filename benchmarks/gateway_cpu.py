"""Gateway CPU time per request, excluding the model call. Prints Markdown tables.

    .venv/bin/python -m benchmarks.gateway_cpu [--photo ../shared/images/astronaut.jpg]
    .venv/bin/python -m benchmarks.gateway_cpu --served-only --concurrency 1 4 --rounds 5 \\
        --baseline /tmp/gateway-before   # a checkout of the code to compare, e.g. `git archive main`

Two views: (1) the hot path in-process (decode with draft, resize/crop, tensor encoding, top-k,
JSON) timed with thread CPU time, p50/p90 over many runs; (2) the real gateway process serving
multipart uploads through waitress and Flask to a real model server (LiteRT, the fallback), CPU
seconds of the gateway process (/proc) divided by requests: everything the gateway spends, minus
the model's own process. (2) is split by thread: waitress's I/O loop (the main thread), the Python
threads that run requests and model calls, and gRPC's own C threads; the model server's CPU per
request, the throughput and the load generator's own CPU are printed beside it. With ``--baseline``
a second gateway runs from that source tree against the same model server, and the two are measured
in alternating rounds (medians), so both see the same machine load.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
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
WARM_UP = 20  # requests per client before a measured round
THREAD_GROUPS = ("waitress I/O loop", "request + call threads", "gRPC core threads")


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
    """utime + stime of all the process's threads, ended ones included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu_s(pid: int) -> dict[int, tuple[str, float]]:
    """Each live thread's (group, CPU seconds), from schedstat's nanoseconds: stat's clock ticks
    (10 ms) are too coarse to split a few milliseconds per request across twenty threads. Python
    3.11 does not name OS threads, so Python's own threads keep the process's name; gRPC's C threads
    carry theirs."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            cpu = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0]) / 1e9
        except OSError:  # the thread ended
            continue
        if int(tid) == pid:
            group = THREAD_GROUPS[0]
        elif name.startswith("python"):
            group = THREAD_GROUPS[1]
        else:
            group = THREAD_GROUPS[2]
        threads[int(tid)] = (group, cpu)
    return threads


def _by_group(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    spent = dict.fromkeys(THREAD_GROUPS, 0.0)
    for tid, (group, cpu) in after.items():
        spent[group] += cpu - before.get(tid, (group, 0.0))[1]
    return spent


class SourceGateway(Gateway):
    """The gateway run from another source tree (``python -m gateway`` would import ours: -m puts
    the working directory first on sys.path)."""

    def __init__(self, source: Path, log: Path, **env: str):
        super().__init__(log, **env)
        self.args = [
            "-c",
            f"import runpy, sys; sys.path.insert(0, {str(source.resolve())!r}); "
            "runpy.run_module('gateway', run_name='__main__', alter_sys=True)",
        ]


@dataclass
class Round:
    gateway_ms: float  # gateway process CPU per request
    by_thread_ms: dict[str, float]
    model_ms: float  # model server process CPU per request
    loadgen_ms: float  # this process's CPU per request (the load generator)
    wall_ms: float  # per request, one client's view
    rps: float


def load(url: str, data: bytes, concurrency: int, per_client: int) -> None:
    """``concurrency`` clients, each sending ``per_client`` uploads one after another."""
    errors: list[BaseException] = []

    def client() -> None:
        session = requests.Session()
        try:
            for _ in range(per_client):
                session.post(
                    f"{url}/classify", files={"file": ("p.jpg", data, "image/jpeg")}, timeout=30
                ).raise_for_status()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    clients = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    if errors:
        raise errors[0]


def measure(gateway: Gateway, server: ModelServer, data: bytes, concurrency: int, count: int) -> Round:
    assert gateway.process is not None and server.process is not None
    load(gateway.url, data, concurrency, WARM_UP)
    per_client = max(1, count // concurrency)
    total = per_client * concurrency
    threads_before = thread_cpu_s(gateway.process.pid)
    gateway_before, model_before = process_cpu_s(gateway.process.pid), process_cpu_s(server.process.pid)
    own_before, wall_before = time.process_time(), time.perf_counter()
    load(gateway.url, data, concurrency, per_client)
    wall = time.perf_counter() - wall_before
    own = time.process_time() - own_before
    gateway_cpu = process_cpu_s(gateway.process.pid) - gateway_before
    model_cpu = process_cpu_s(server.process.pid) - model_before
    by_thread = _by_group(threads_before, thread_cpu_s(gateway.process.pid))
    return Round(
        gateway_ms=gateway_cpu / total * 1000,
        by_thread_ms={group: cpu / total * 1000 for group, cpu in by_thread.items()},
        model_ms=model_cpu / total * 1000,
        loadgen_ms=own / total * 1000,
        wall_ms=wall / per_client * 1000,
        rps=total / wall,
    )


@contextmanager
def stacks(model_tflite: Path, sources: dict[str, Path | None]) -> Iterator[tuple[ModelServer, dict[str, Gateway]]]:
    """One LiteRT model server and one fallback-only gateway per source tree (None: this one)."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        base = serve_tflite(Path(tmp), "fallback", model_tflite)
        server = ModelServer(base, "fallback", Path(tmp) / "model.log")
        stack.enter_context(server)
        server.start()
        env = {"FALLBACK_URL": f"grpc://{server.grpc_target}", "FALLBACK_MODEL": "fallback"}
        gateways: dict[str, Gateway] = {}
        for name, source in sources.items():
            log = Path(tmp) / f"gateway-{len(gateways)}.log"
            gateway = Gateway(log, **env) if source is None else SourceGateway(source, log, **env)
            stack.enter_context(gateway)
            gateways[name] = gateway.start()
        yield server, gateways


def _median(rounds: list[Round], value: Callable[[Round], float]) -> float:
    return statistics.median(value(r) for r in rounds)


def served_table(args: argparse.Namespace, size: str, data: bytes) -> None:
    sources: dict[str, Path | None] = {"this tree": None}
    if args.baseline:
        sources = {f"baseline ({args.baseline})": args.baseline, **sources}
    with stacks(args.model, sources) as (server, gateways):
        results: dict[tuple[str, int], list[Round]] = {}
        for _ in range(args.rounds):
            for concurrency in args.concurrency:
                for name, gateway in gateways.items():
                    rounds = results.setdefault((name, concurrency), [])
                    rounds.append(measure(gateway, server, data, concurrency, args.runs))
    print(
        f"\nServed, {size} upload, {args.runs} requests per round, median of {args.rounds} alternating rounds "
        "(CPU ms per request)\n"
    )
    print(
        "| gateway | c | gateway CPU | "
        + " | ".join(THREAD_GROUPS)
        + " | model server CPU | load generator CPU | req/s | wall per request ms |"
    )
    print("|---|---|---|" + "---|" * len(THREAD_GROUPS) + "---|---|---|---|")
    for (name, concurrency), rounds in results.items():
        groups = " | ".join(f"{statistics.median(r.by_thread_ms[g] for r in rounds):.2f}" for g in THREAD_GROUPS)
        print(
            f"| {name} | {concurrency} | {_median(rounds, lambda r: r.gateway_ms):.2f} | {groups} | "
            f"{_median(rounds, lambda r: r.model_ms):.2f} | {_median(rounds, lambda r: r.loadgen_ms):.2f} | "
            f"{_median(rounds, lambda r: r.rps):.1f} | {_median(rounds, lambda r: r.wall_ms):.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=Path("../shared/images/astronaut.jpg"))
    parser.add_argument("--model", type=Path, default=Path("build/models/mobilenet_v3_large/1/model.tflite"))
    parser.add_argument("--runs", type=int, default=200, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="clients, for the served table")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, for the served table")
    parser.add_argument("--baseline", type=Path, help="a source tree whose gateway to measure beside this one")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES), help="for the served table")
    parser.add_argument("--served-only", action="store_true", help="skip the per-size hot-path table")
    args = parser.parse_args()
    if not args.served_only:
        labels = load_labels(DEFAULT_LABELS)
        print("| JPEG | hot path CPU p50 / p90 ms |")
        print("|---|---|")
        for name, size in SIZES.items():
            data = make_jpeg(args.photo, size)
            samples = np.array(hot_path(data, labels, args.runs)) * 1000
            print(
                f"| {name}, {len(data) / 1e6:.2f} MB | {np.percentile(samples, 50):.2f} / "
                f"{np.percentile(samples, 90):.2f} |"
            )
    for size in args.sizes:
        served_table(args, size, make_jpeg(args.photo, SIZES[size]))


if __name__ == "__main__":
    main()

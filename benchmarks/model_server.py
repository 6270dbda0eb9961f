"""Benchmark the LiteRT model server against a direct interpreter call. Prints a Markdown table.

    .venv/bin/python -m benchmarks.model_server --models build/models [--model mobilenet_v3_large]

Measures, per pool layout (interpreters x threads): the server's latency over gRPC and REST at
batch 1 and what it adds over a direct interpreter call with the same thread count (direct and
server calls alternate, so both see the same machine noise; "added" is the median of the paired
differences), throughput at concurrency 1/4/8 over gRPC, and the server's RSS.

    .venv/bin/python -m benchmarks.model_server --models /work/models-random --batching \
        --layout 2x1 --config models/primary/batching.config [--config other.config ...]

Server-side batching (issue 15): one server with batching off and one per BATCHING_PARAMETERS_FILE,
all started at once with the same pool layout (interpreters x threads) and measured in interleaved
rounds (the median round is printed) at concurrency 1, 4, 8 and 16 over gRPC with one image per
request: throughput, p50 and p99 latency, and the server's CPU seconds per image.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import requests
from ai_edge_litert.interpreter import Interpreter

from benchmarks.process_accounting import resident_bytes
from benchmarks.timing import ms, timed
from common.cpu_quota import usable_cores
from local_mode.processes import ModelServer
from protocol import tensors
from protocol.generated import tfs_predict_pb2, tfs_predict_pb2_grpc


def direct_call(path: Path, image: np.ndarray, threads: int):
    runner = Interpreter(str(path), num_threads=threads).get_signature_runner()
    name = list(runner.get_input_details())[0]
    return lambda: runner(**{name: image})


def interleaved(first, second, count: int) -> tuple[list[float], list[float]]:
    """Alternate two calls; return both sample lists (same length, paired by index)."""
    a_samples, b_samples = [], []
    for _ in range(10):
        first(), second()
    for _ in range(count):
        for call, samples in ((first, a_samples), (second, b_samples)):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
    return a_samples, b_samples


def throughput(call, concurrency: int, total: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: call(), range(total)))
    return total / (time.perf_counter() - start)


def rss_mb(pid: int) -> tuple[float, float]:
    now, peak = resident_bytes(pid)
    return now / 2**20, peak / 2**20


def bench(models: Path, name: str, model_file: str, interpreters: int, threads: int, count: int) -> dict:
    image = np.random.default_rng(0).integers(0, 256, size=(1, 224, 224, 3), dtype=np.uint8)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ModelServer(
            models,
            name,
            Path(tmp) / "log",
            MODEL_FILE=model_file,
            INTERPRETERS=str(interpreters),
            INTERPRETER_THREADS=str(threads),
        ) as server,
    ):
        server.start(timeout=120)
        loaded_rss, _ = rss_mb(server.process.pid)
        channel = grpc.insecure_channel(server.grpc_target)
        stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
        request = tfs_predict_pb2.PredictRequest(
            model_spec=tfs_predict_pb2.ModelSpec(name=name), inputs={"images": tensors.to_proto(image)}
        )
        session = requests.Session()
        rest_body = json.dumps({"instances": image.tolist()}).encode()
        url = f"{server.rest}/v1/models/{name}:predict"
        direct = direct_call(models / name / "1" / model_file, image, threads)
        direct_samples, grpc_samples = interleaved(direct, lambda: stub.Predict(request, timeout=30), count)
        result = {
            "direct": direct_samples,
            "grpc": grpc_samples,
            "added": [g - d for g, d in zip(grpc_samples, direct_samples, strict=True)],
            "rest": timed(lambda: session.post(url, data=rest_body, timeout=30).raise_for_status(), count // 4),
            "throughput": {
                c: throughput(lambda: stub.Predict(request, timeout=60), c, max(40, count // 2)) for c in (1, 4, 8)
            },
        }
        result["rss_loaded"], _ = loaded_rss, None
        result["rss_now"], result["rss_peak"] = rss_mb(server.process.pid)
        channel.close()
    return result


CONCURRENCY = (1, 4, 8, 16)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(stub, request, concurrency: int, total: int, pid: int) -> dict:
    """``total`` calls from ``concurrency`` clients: throughput, latencies and server CPU per call."""
    latencies: list[float] = []

    def call() -> None:
        start = time.perf_counter()
        stub.Predict(request, timeout=120)
        latencies.append(time.perf_counter() - start)

    cpu, start = cpu_seconds(pid), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: call(), range(total)))
    elapsed = time.perf_counter() - start
    return {
        "rps": total / elapsed,
        "p50": ms(latencies, 50),
        "p99": ms(latencies, 99),
        "cpu_ms": (cpu_seconds(pid) - cpu) / total * 1000,
    }


def bench_batching(args: argparse.Namespace) -> None:
    interpreters, threads = (int(n) for n in args.layout.split("x"))
    image = np.random.default_rng(0).integers(0, 256, size=(1, 224, 224, 3), dtype=np.uint8)
    request = tfs_predict_pb2.PredictRequest(
        model_spec=tfs_predict_pb2.ModelSpec(name=args.model), inputs={"images": tensors.to_proto(image)}
    )
    variants: dict[str, dict[str, str]] = {"off": {}}
    for config in args.config:
        variants[config.name] = {"ENABLE_BATCHING": "true", "BATCHING_PARAMETERS_FILE": str(config.resolve())}
    results: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        servers = {}
        for name, env in variants.items():
            server = stack.enter_context(
                ModelServer(
                    args.models,
                    args.model,
                    Path(tmp) / f"{name}.log",
                    MODEL_FILE=args.model_file,
                    INTERPRETERS=str(interpreters),
                    INTERPRETER_THREADS=str(threads),
                    MAX_BATCH="64",
                    **env,
                )
            )
            server.start(timeout=300)
            channel = stack.enter_context(grpc.insecure_channel(server.grpc_target))
            stub = tfs_predict_pb2_grpc.PredictionServiceStub(channel)
            load(stub, request, 2, 8, server.process.pid)  # warm-up
            servers[name] = (stub, server.process.pid)
        for _ in range(args.rounds):
            for concurrency in CONCURRENCY:
                total = max(args.count, 2 * concurrency)
                for name, (stub, pid) in servers.items():
                    results.setdefault((name, concurrency), []).append(load(stub, request, concurrency, total, pid))
    print(
        f"## {args.model} ({args.model_file}), {interpreters} interpreter(s) x {threads} thread(s), "
        f"{usable_cores()} cores, median of {args.rounds} interleaved rounds\n"
    )
    print("| batching | c | req/s | p50 ms | p99 ms | server CPU ms/image |")
    print("|---|---|---|---|---|---|")
    for concurrency in CONCURRENCY:
        for name in variants:
            rounds = sorted(results[(name, concurrency)], key=lambda r: r["rps"])
            median = rounds[len(rounds) // 2]
            print(
                f"| {name} | {concurrency} | {median['rps']:.1f} | {median['p50']:.1f} | {median['p99']:.1f} "
                f"| {median['cpu_ms']:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("build/models"))
    parser.add_argument("--model", default="mobilenet_v3_large")
    parser.add_argument("--model-file", default="model.tflite")
    parser.add_argument("--count", type=int, default=400, help="calls per measurement (per round with --batching)")
    parser.add_argument("--batching", action="store_true", help="compare batching off and each --config")
    parser.add_argument("--config", type=Path, action="append", default=[], help="a BATCHING_PARAMETERS_FILE")
    parser.add_argument("--layout", default="2x1", help="interpreters x threads per interpreter (--batching)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--batching)")
    args = parser.parse_args()
    if args.batching:
        bench_batching(args)
        return
    cores = usable_cores()
    print(f"## {args.model} ({args.model_file}), {cores} cores\n")
    print(
        "| layout | direct p50 ms | gRPC p50 / p99 ms | gRPC added p50 ms | REST p50 ms | req/s c=1 / 4 / 8 "
        "| RSS loaded / peak MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for interpreters, threads in ((cores, 1), (1, cores), (cores, cores)):
        r = bench(args.models, args.model, args.model_file, interpreters, threads, args.count)
        d50, added = ms(r["direct"], 50), ms(r["added"], 50)
        g50, g99 = ms(r["grpc"], 50), ms(r["grpc"], 99)
        tp = " / ".join(f"{r['throughput'][c]:.0f}" for c in (1, 4, 8))
        print(
            f"| {interpreters} interpreter(s) x {threads} thread(s) | {d50:.2f} | {g50:.2f} / {g99:.2f} "
            f"| {added:.2f} | {ms(r['rest'], 50):.1f} | {tp} | {r['rss_loaded']:.0f} / "
            f"{r['rss_peak']:.0f} |"
        )


if __name__ == "__main__":
    main()

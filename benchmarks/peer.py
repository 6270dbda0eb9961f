"""Side by side (issue 15): our fallback-only stack against the servers a user would otherwise run,
with the same photos and the same bounded load generator. Prints Markdown tables.

    flock /work/heavy.lock .venv/bin/python -m benchmarks.peer --models /work/models-random --quick

Stacks, all on 127.0.0.1 (ports --port-base .. +4, default 18400-18404):
- ours: the gateway (waitress, Flask) with the fallback only, and our LiteRT model server serving the
  MobileNetV3-Large export (model.tflite, float32) as the fallback image runs it: one interpreter
  per core, one thread each, batching off (--batching-config models/fallback/batching.config: on).
- torch: FastAPI + torch MobileNetV3-Large under gunicorn with one uvicorn worker per core, random
  weights (benchmarks/peers/torch_app.py; the model is written in plain torch, see
  benchmarks/peers/mobilenet_v3.py for why torchvision cannot be used with the CPU wheel).
- bento: BentoML serving the same .tflite with the same preprocessing and layout
  (benchmarks/peers/bento_service.py).
The peers run from their own virtualenvs, .cache/peer-venv and .cache/bento-venv, created on first
use from benchmarks/peers/requirements-*.txt.

Load: benchmarks/load_generator.py, closed loop at each concurrency, a fixed number of requests and a
time cap per point, after a short warm-up; the photos of ../shared/images and tests/data in turn as
multipart uploads. Rounds are interleaved (each round: every concurrency, every stack in turn, then
the raw interpreter); each figure is the median over rounds, RSS the largest seen.

The CPU split per request (ours): servers' CPU = user+system CPU of the gateway and model server
processes (/proc, via psutil) over the point, divided by the requests. Inference = the raw
interpreter's CPU per invoke at the same concurrency (benchmarks/raw_interpreter.py: the same model
and pool layout in this process, no servers). Decode+resize = the gateway's own functions
(gateway.imaging decode + to_tensor, the export manifest's policy) on the same photos, timed with
thread CPU time in this process. Framework = servers' CPU - inference - decode+resize: everything
else in the gateway and the model server together (HTTP, Flask, multipart, gRPC client and server,
protobuf, thread hand-offs, metrics, logging).

--profile then runs py-spy against the gateway and the model server under load at c=4 and writes
flame graphs (.svg) and speedscope files (.speedscope.json) under .cache/profiles/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import load_generator, peer_stacks
from benchmarks.load_generator import Upload
from benchmarks.peers import venvs
from benchmarks.process_accounting import CpuSplit, ProcessTree, cpu_used
from benchmarks.raw_interpreter import InterpreterPool
from common.cpu_quota import usable_cores
from gateway.imaging import decode, to_tensor
from gateway.settings import Settings as GatewaySettings

REPO = Path(__file__).resolve().parent.parent
PHOTO_FOLDERS = (REPO.parent / "shared" / "images", REPO / "tests" / "data")
PROFILES = REPO / ".cache" / "profiles"
STACKS = ("ours", "torch", "bento")
PEERS = ("torch", "bento")


@dataclass(frozen=True)
class Plan:
    rounds: int
    requests: int  # per point
    time_cap_s: float  # per point
    concurrencies: tuple[int, ...]


QUICK = Plan(rounds=3, requests=120, time_cap_s=5.0, concurrencies=(1, 4, 8, 16))
FULL = Plan(rounds=5, requests=200, time_cap_s=8.0, concurrencies=(1, 4, 8, 16))


@dataclass(frozen=True)
class Point:
    """One stack at one concurrency in one round."""

    throughput: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float  # all the stack's processes, per request
    cpu_by_role_ms: dict[str, float]  # the same, for each of its servers ("gateway", "model-server", ...)
    client_cpu_ms: float  # the load generator's, per request
    rss_mb: float
    pss_mb: float
    errors: int


MEMORY = ("rss_mb", "pss_mb")


def photos() -> list[Path]:
    found = sorted(p for folder in PHOTO_FOLDERS if folder.is_dir() for p in folder.glob("*.jpg"))
    if not found:
        raise SystemExit(f"peer: no photos in {', '.join(map(str, PHOTO_FOLDERS))}")
    return found


def gateway_tensor(data: bytes, settings: GatewaySettings) -> np.ndarray:
    """What our gateway sends the model for ``data``: its own decode and resize, its own settings."""
    assert settings.fallback is not None
    return to_tensor(decode(data, settings.max_pixels, settings.decode_shorter), settings.fallback.policy)


def decode_resize_cpu_ms(images: list[bytes], settings: GatewaySettings, passes: int = 20) -> float:
    """Thread CPU per image of the gateway's decode + resize/crop, the median of ``passes`` passes
    over the photos (each photo as often as the load generator sends it)."""
    per_pass = []
    for _ in range(passes):
        start = time.thread_time()
        for data in images:
            gateway_tensor(data, settings)
        per_pass.append((time.thread_time() - start) * 1000 / len(images))
    return statistics.median(per_pass)


def measure(stack: peer_stacks.Stack, uploads: list[Upload], concurrency: int, plan: Plan) -> Point:
    load_generator.run("127.0.0.1", stack.port, "/classify", uploads, concurrency, 2 * concurrency + 4, plan.time_cap_s)
    trees = {role: ProcessTree([pid]) for role, pid in stack.pids.items()}
    before = {role: tree.cpu_seconds() for role, tree in trees.items()}
    result = load_generator.run(
        "127.0.0.1", stack.port, "/classify", uploads, concurrency, plan.requests, plan.time_cap_s
    )
    served = max(1, result.answered + len(result.errors))
    held = [tree.memory() for tree in trees.values()]
    cpu_ms = {role: cpu_used(before[role], tree.cpu_seconds()) * 1000 / served for role, tree in trees.items()}
    for error in sorted(set(result.errors))[:3]:
        print(f"peer: {stack.name} c={concurrency}: {error}", file=sys.stderr)
    return Point(
        throughput=result.throughput,
        p50_ms=result.latency_ms(50),
        p99_ms=result.latency_ms(99),
        server_cpu_ms=sum(cpu_ms.values()),
        cpu_by_role_ms=cpu_ms,
        client_cpu_ms=result.client_cpu_ms_per_request,
        rss_mb=sum(memory.rss for memory in held) / 1e6,
        pss_mb=sum(memory.pss for memory in held) / 1e6,
        errors=len(result.errors),
    )


def median(points: list[Point], field: str) -> float:
    return statistics.median(getattr(p, field) for p in points)


def median_role(points: list[Point], role: str) -> float:
    return statistics.median(p.cpu_by_role_ms[role] for p in points)


def ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}x" if peer else "-"


def print_tables(
    plan: Plan,
    points: dict[tuple[str, int], list[Point]],
    raw: dict[int, list[tuple[float, float]]],
    decode_ms: float,
    stacks: tuple[str, ...],
) -> None:
    print("\n| c | stack | req/s | p50 ms | p99 ms | servers' CPU ms/req | RSS MB (max) | PSS MB (max) | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in plan.concurrencies:
        for name in stacks:
            row = points[name, c]
            print(
                f"| {c} | {name} | {median(row, 'throughput'):.1f} | {median(row, 'p50_ms'):.1f} | "
                f"{median(row, 'p99_ms'):.1f} | {median(row, 'server_cpu_ms'):.1f} | "
                f"{max(p.rss_mb for p in row):.0f} | {max(p.pss_mb for p in row):.0f} | {sum(p.errors for p in row)} |"
            )
    peers = [p for p in PEERS if p in stacks]
    if "ours" in stacks and peers:
        print("\nOurs / peer (throughput: higher is better; p50, p99, RSS, PSS: lower is better):\n")
        print("| c | " + " | ".join(f"{p}: req/s | {p}: p50 | {p}: p99 | {p}: RSS | {p}: PSS" for p in peers) + " |")
        print("|---|" + "---|---|---|---|---|" * len(peers))
        for c in plan.concurrencies:
            ours = points["ours", c]
            cells = []
            for peer in peers:
                theirs = points[peer, c]
                cells += [ratio(median(ours, f), median(theirs, f)) for f in ("throughput", "p50_ms", "p99_ms")]
                cells += [ratio(max(getattr(p, f) for p in ours), max(getattr(p, f) for p in theirs)) for f in MEMORY]
            print(f"| {c} | " + " | ".join(cells) + " |")
    print(
        "\n| c | raw interpreter req/s | "
        + " | ".join(f"{s} req/s" for s in stacks)
        + " | ours / raw | load generator CPU ms/req ("
        + ", ".join(stacks)
        + ") |"
    )
    print("|---|---|" + "---|" * len(stacks) + "---|---|")
    for c in plan.concurrencies:
        raw_rate = statistics.median(r for r, _ in raw[c])
        rates = [median(points[s, c], "throughput") for s in stacks]
        ours_raw = ratio(median(points["ours", c], "throughput"), raw_rate) if "ours" in stacks else "-"
        client = ", ".join(f"{median(points[s, c], 'client_cpu_ms'):.2f}" for s in stacks)
        print(f"| {c} | {raw_rate:.1f} | " + " | ".join(f"{r:.1f}" for r in rates) + f" | {ours_raw} | {client} |")
    if "ours" not in stacks:
        return
    print(
        "\nOurs, CPU per request (ms), from /proc: gateway, model server; inference = the raw interpreter's "
        "CPU per invoke at the same c; decode+resize = gateway.imaging timed in-process; framework = the rest "
        "(gateway's: gateway - decode+resize; model server's: model server - inference).\n"
    )
    print(
        "| c | gateway | model server | inference | decode+resize | framework: gateway | framework: model server "
        "| framework total | inference's share |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for c in plan.concurrencies:
        split = CpuSplit(
            gateway_ms=median_role(points["ours", c], "gateway"),
            model_server_ms=median_role(points["ours", c], "model-server"),
            inference_ms=statistics.median(cpu for _, cpu in raw[c]),
            decode_resize_ms=decode_ms,
        )
        print(
            f"| {c} | {split.gateway_ms:.1f} | {split.model_server_ms:.1f} | {split.inference_ms:.1f} | "
            f"{split.decode_resize_ms:.1f} | {split.gateway_framework_ms:.1f} | "
            f"{split.model_server_framework_ms:.1f} | {split.framework_ms:.1f} | {split.inference_share:.0%} |"
        )


def py_spy() -> str | None:
    """The py-spy pinned in Pipfile (beside this python), else one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile(stack: peer_stacks.Stack, uploads: list[Upload], concurrency: int, seconds: int) -> list[Path]:
    """py-spy against each of the stack's processes under load, one run per output format."""
    executable = py_spy()
    assert executable is not None
    PROFILES.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, suffix in (("flamegraph", "svg"), ("speedscope", "speedscope.json")):
        samplers = []
        for role, pid in stack.pids.items():
            out = PROFILES / f"{stack.name}-{role}-c{concurrency}.{suffix}"
            command = [executable, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100"]
            samplers.append(subprocess.Popen([*command, "--nonblocking", "--format", fmt, "-o", str(out)]))
            written.append(out)
        time.sleep(1)  # py-spy attaches before the load starts
        load_generator.run("127.0.0.1", stack.port, "/classify", uploads, concurrency, 1_000_000, seconds - 2)
        for sampler in samplers:
            if sampler.wait(timeout=seconds + 60) != 0:
                raise SystemExit(f"peer: py-spy exited with {sampler.returncode}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=REPO / "build" / "models", help="an export's output folder")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.rounds} rounds of {QUICK.requests} requests")
    parser.add_argument("--rounds", type=int, help="override the plan's rounds")
    parser.add_argument("--requests", type=int, help="override the plan's requests per point")
    parser.add_argument("--concurrency", type=int, nargs="+", help="override the plan's concurrencies")
    parser.add_argument("--stacks", nargs="+", choices=STACKS, default=list(STACKS))
    parser.add_argument("--torch-threads", type=int, default=1, help="OMP_NUM_THREADS of each torch worker")
    parser.add_argument("--port-base", type=int, default=18400)
    parser.add_argument(
        "--batching-config",
        default="none",
        help="our model server's BATCHING_PARAMETERS_FILE, or 'none' (the fallback image's default): off",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy our servers under load at c=4")
    parser.add_argument("--profile-seconds", type=int, default=15)
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(
        rounds=args.rounds or base.rounds,
        requests=args.requests or base.requests,
        time_cap_s=base.time_cap_s,
        concurrencies=tuple(args.concurrency or base.concurrencies),
    )
    model = args.models / "mobilenet_v3_large" / "1" / "model.tflite"
    if not model.exists():
        parser.error(f"--models {args.models}: no {model.relative_to(args.models)} (python -m models.export)")
    if args.profile and (py_spy() is None or "ours" not in args.stacks):
        parser.error("--profile needs py-spy (scripts/test.sh installs it from Pipfile) and the ours stack")
    manifest = model.parent / "manifest.json"
    manifest_or_none = manifest if manifest.exists() else None
    stacks = tuple(s for s in STACKS if s in args.stacks)
    batching = None if args.batching_config == "none" else Path(args.batching_config)
    cores = usable_cores()
    images = [p.read_bytes() for p in photos()]
    uploads = [Upload.multipart(data, f"photo{i}.jpg") for i, data in enumerate(images)]
    port = {"torch": args.port_base, "bento": args.port_base + 1, "ours": args.port_base + 2}  # ours: to +4
    gateway_settings = GatewaySettings.from_env(peer_stacks.gateway_env(port["ours"] + 1, manifest_or_none))
    batches = [gateway_tensor(data, gateway_settings) for data in images]
    pythons = {"torch": venvs.ensure(*venvs.TORCH), "bento": venvs.ensure(*venvs.BENTO)}
    print(
        f"peer: {len(images)} photos, {plan.rounds} rounds x c={list(plan.concurrencies)}, {plan.requests} "
        f"requests or {plan.time_cap_s:.0f} s per point, {cores} cores, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    points: dict[tuple[str, int], list[Point]] = defaultdict(list)
    raw: dict[int, list[tuple[float, float]]] = defaultdict(list)
    started_at = time.monotonic()
    pool = InterpreterPool(model, interpreters=cores, threads=1)
    with tempfile.TemporaryDirectory(prefix="peer-") as scratch, ExitStack() as running:
        folder = Path(scratch)
        started: dict[str, peer_stacks.Stack] = {}
        for name in stacks:
            if name == "ours":
                stack = peer_stacks.start_ours(model, manifest_or_none, port["ours"], folder, cores, batching)
            elif name == "torch":
                stack = peer_stacks.start_torch(pythons["torch"], port["torch"], folder, cores, args.torch_threads)
            else:
                stack = peer_stacks.start_bento(pythons["bento"], model, port["bento"], folder)
            running.callback(stack.stop)
            started[name] = stack
        for round_index in range(plan.rounds):
            for c in plan.concurrencies:
                order = stacks[round_index % len(stacks) :] + stacks[: round_index % len(stacks)]
                for name in order:
                    points[name, c].append(measure(started[name], uploads, c, plan))
                pool.run(batches, c, 2 * c, plan.time_cap_s)
                result = pool.run(batches, c, plan.requests, plan.time_cap_s)
                raw[c].append((result.throughput, result.cpu_ms_per_invoke))
            print(f"peer: round {round_index + 1}/{plan.rounds} done", flush=True)
        decode_ms = decode_resize_cpu_ms(images, gateway_settings)
        print(
            f"\npeer: measured in {time.monotonic() - started_at:.0f} s; load average "
            f"{os.getloadavg()[0]:.1f} at the end (other jobs share the cores)"
        )
        print_tables(plan, points, raw, decode_ms, stacks)
        if args.profile:
            for path in profile(started["ours"], uploads, 4, args.profile_seconds):
                print(f"peer: wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

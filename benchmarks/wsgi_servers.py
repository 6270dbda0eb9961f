"""The same gateway app under four WSGI servers, side by side. Prints a Markdown table.

    .venv/bin/python -m benchmarks.wsgi_servers --model build/models/mobilenet_v3_large/1/model.tflite

waitress as ``python -m gateway`` serves it (the default, with its slow-client protections), and
granian (WSGI interface), gunicorn (gthread worker) and cheroot serve ``served_app()`` (the same
start-up: JSON access log to stdout, the allocator setting, ``create_app()``) with as many request threads, all fallback-only against one LiteRT model server. The candidates are not
project dependencies: they are installed, pinned, into ``.cache/wsgi-servers/`` on first use.
Rounds alternate between the servers (medians), each the same 0.3 MP upload from ``--concurrency``
clients; CPU is the server's whole process tree (a master process included) per request.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from flask import Flask

from benchmarks.gateway_cpu import SIZES, WARM_UP, load, make_jpeg
from benchmarks.process_accounting import ProcessTree, cpu_used
from common.allocator import return_large_blocks_to_the_os
from common.logs import log_json_to_stdout
from gateway import create_app
from local_mode.processes import REPO, Gateway, ModelServer, serve_tflite

CACHE = REPO / ".cache" / "wsgi-servers"
THREADS = 40  # the gateway's default THREADS (MAX_IN_FLIGHT 32 + 8)
PINNED = {"granian": "granian==2.8.7", "gunicorn": "gunicorn==27.0.1", "cheroot": "cheroot==11.1.2"}


def served_app() -> Flask:
    """The app as ``python -m gateway`` builds it, for the other servers."""
    log_json_to_stdout()
    return_large_blocks_to_the_os()
    return create_app()


def installed(name: str) -> Path:
    target = CACHE / name
    if not (target / name).exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), PINNED[name]], check=True
        )
    return target


def command(name: str, port: int) -> list[str]:
    """How each server is started on 127.0.0.1:``port`` with ``THREADS`` request threads."""
    if name == "waitress":
        return ["-m", "gateway"]
    if name == "granian":
        return [
            "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--blocking-threads", str(THREADS), "--no-log", "--factory", "benchmarks.wsgi_servers:served_app",
        ]  # fmt: skip
    if name == "gunicorn":
        return [
            "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1", "--threads", str(THREADS),
            "--bind", f"127.0.0.1:{port}", "benchmarks.wsgi_servers:served_app()",
        ]  # fmt: skip
    return [
        "-c",
        "from cheroot.wsgi import Server; from benchmarks.wsgi_servers import served_app; "
        f"Server(('127.0.0.1', {port}), served_app(), numthreads={THREADS}).safe_start()",
    ]


class Server(Gateway):
    """The gateway's app served by ``name`` instead of its own waitress entry point."""

    def __init__(self, name: str, log: Path, **env: str):
        path = f"{REPO}:{installed(name)}" if name != "waitress" else str(REPO)
        super().__init__(log, PYTHONPATH=path, **env)
        self.args = command(name, self.port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=Path("../shared/images/astronaut.jpg"))
    parser.add_argument("--model", type=Path, default=Path("build/models/mobilenet_v3_large/1/model.tflite"))
    parser.add_argument("--runs", type=int, default=300, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--servers", nargs="+", default=["waitress", *PINNED], choices=["waitress", *PINNED])
    args = parser.parse_args()
    data = make_jpeg(args.photo, SIZES["0.3 MP (640x480)"])
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        base = serve_tflite(Path(tmp), "fallback", args.model)
        model = ModelServer(base, "fallback", Path(tmp) / "model.log")
        stack.enter_context(model)
        model.start()
        env = {"FALLBACK_URL": f"grpc://{model.grpc_target}", "FALLBACK_MODEL": "fallback"}
        servers = {}
        for name in args.servers:
            servers[name] = Server(name, Path(tmp) / f"{name}.log", **env)
            stack.enter_context(servers[name])
            servers[name].start(timeout=60)
        for _ in range(args.rounds):
            for concurrency in args.concurrency:
                for name, server in servers.items():
                    assert server.process is not None
                    load(server.url, data, concurrency, WARM_UP)
                    per_client = max(1, args.runs // concurrency)
                    tree = ProcessTree([server.process.pid])  # gunicorn's and granian's workers too
                    cpu_before, wall_before = tree.cpu_seconds(), time.perf_counter()
                    load(server.url, data, concurrency, per_client)
                    wall = time.perf_counter() - wall_before
                    total = per_client * concurrency
                    cpu = cpu_used(cpu_before, tree.cpu_seconds()) / total
                    results.setdefault((name, concurrency), []).append(
                        (cpu * 1000, total / wall, wall / per_client * 1000)
                    )
    print(f"\n0.3 MP upload, {args.runs} requests per round, median of {args.rounds} alternating rounds\n")
    print("| server | c | server CPU per request ms | req/s | wall per request ms |")
    print("|---|---|---|---|---|")
    for (name, concurrency), rounds in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        cpu, rps, wall = (statistics.median(r[i] for r in rounds) for i in range(3))
        print(f"| {name} | {concurrency} | {cpu:.2f} | {rps:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()

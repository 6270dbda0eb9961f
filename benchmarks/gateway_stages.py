"""Where the gateway's CPU goes, stage by stage, on the real request path. Prints a Markdown table.

    .venv/bin/python -m benchmarks.gateway_stages --model build/models/mobilenet_v3_large/1/model.tflite

A fallback-only gateway (waitress, Flask, a LiteRT model server over gRPC) runs in a child process
whose request-path functions are wrapped to add up their thread CPU time (``time.thread_time``),
inclusive of what they call; the load is sequential 0.3 MP uploads. Each wrapper costs about a
microsecond, so the rows are a breakdown, not the gateway's CPU figure: that is ``gateway_cpu``'s.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.gateway_cpu import SIZES, WARM_UP, load, make_jpeg, process_cpu_s
from local_mode.processes import Gateway, ModelServer, serve_tflite

# (module, attribute path, what the row means), outermost first
STAGES = (
    ("waitress.channel", "HTTPChannel.service", "request thread, all (waitress task, app, response write)"),
    ("flask.app", "Flask.wsgi_app", "Flask app (request context, routing, hooks, view)"),
    ("flask.app", "Flask.preprocess_request", "before-request hook (request id)"),
    ("flask.app", "Flask.process_response", "after-request hook (counter, JSON access log)"),
    ("logging", "Logger.info", "JSON access log line"),
    ("gateway.api", "read_inputs", "read and decode the upload"),
    ("gateway.inputs", "uploaded_images", "multipart parsing"),
    ("gateway.inputs", "imaging.decode", "JPEG decode (draft), orientation, RGB"),
    ("gateway.routing", "Router.classify", "routing race (tensor, model call, outcome, breaker)"),
    ("gateway.routing", "to_tensor", "resize + centre crop to the tensor"),
    ("gateway.clients", "GrpcModelClient._predict", "model call (request proto, gRPC, answer check)"),
    ("grpc._channel", "_UnaryUnaryMultiCallable.__call__", "gRPC blocking call"),
    ("gateway.clients", "tensors.to_proto", "TensorProto from the tensor"),
    ("gateway.clients", "tensors.to_array", "probabilities from the answer"),
    ("gateway.api", "top_k", "top-5 labels"),
    ("gateway.api", "jsonify", "JSON answer"),
)


def _instrument(spent: defaultdict[str, float], calls: defaultdict[str, int]) -> None:
    import importlib

    lock = threading.Lock()
    for module_name, path, label in STAGES:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original: Callable = getattr(owner, name)

        def timed(*args: Any, _original: Callable = original, _label: str = label, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return _original(*args, **kwargs)
            finally:
                with lock:
                    spent[_label] += time.thread_time() - started
                    calls[_label] += 1

        setattr(owner, name, functools.wraps(original)(timed))


def serve(report: Path) -> int:
    """The child: ``python -m gateway`` with the stages wrapped; the sums go to ``report`` at exit."""
    spent: defaultdict[str, float] = defaultdict(float)
    calls: defaultdict[str, int] = defaultdict(int)
    _instrument(spent, calls)
    from gateway.__main__ import main

    code = main()
    report.write_text(json.dumps({"spent": spent, "calls": calls}))
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=Path("../shared/images/astronaut.jpg"))
    parser.add_argument("--model", type=Path, default=Path("build/models/mobilenet_v3_large/1/model.tflite"))
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the child's report file
    args = parser.parse_args()
    if args.serve:
        sys.exit(serve(args.serve))
    data = make_jpeg(args.photo, SIZES["0.3 MP (640x480)"])
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "stages.json"
        server = ModelServer(serve_tflite(Path(tmp), "fallback", args.model), "fallback", Path(tmp) / "m.log")
        with server:
            server.start()
            gateway = Gateway(
                Path(tmp) / "gw.log", FALLBACK_URL=f"grpc://{server.grpc_target}", FALLBACK_MODEL="fallback"
            )
            gateway.args = ["-m", "benchmarks.gateway_stages", "--serve", str(report)]
            with gateway:
                gateway.start()
                assert gateway.process is not None
                load(gateway.url, data, 1, WARM_UP)
                before = process_cpu_s(gateway.process.pid)
                load(gateway.url, data, 1, args.runs)
                process_ms = (process_cpu_s(gateway.process.pid) - before) / args.runs * 1000
        sums = json.loads(report.read_text())
    requests_seen = sums["calls"]["read and decode the upload"]  # classify requests, not health checks
    print(f"\n0.3 MP upload, {args.runs} sequential requests; gateway process CPU {process_ms:.2f} ms per request\n")
    print("| stage (inclusive) | thread CPU ms per request | calls per request |")
    print("|---|---|---|")
    for _, _, label in STAGES:
        if label in sums["spent"]:
            spent_ms = sums["spent"][label] / requests_seen * 1000
            print(f"| {label} | {spent_ms:.3f} | {sums['calls'][label] / requests_seen:.2f} |")


if __name__ == "__main__":
    main()

"""The three stacks benchmarks/peer.py drives, each started on 127.0.0.1 and stopped on exit:
ours (the fallback-only gateway and our LiteRT model server), the torch peer (FastAPI under gunicorn
with uvicorn workers) and the BentoML peer."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import requests

from local_mode.processes import Gateway, ModelServer, Service, serve_tflite, wait_until


@dataclass
class Stack:
    name: str
    port: int  # where POST /classify answers
    services: dict[str, Service]  # by role: "gateway", "model-server", "gunicorn", "bentoml"

    @property
    def pids(self) -> dict[str, int]:
        return {role: service.process.pid for role, service in self.services.items() if service.process}

    def stop(self) -> None:
        for service in reversed(self.services.values()):
            if service.process is not None:
                service.stop()


class PeerServer(Service):
    """A server run by a peer's own virtualenv python, ready when ``ready_path`` answers 200."""

    def __init__(self, python: Path, args: list[str], env: dict[str, str], log: Path, port: int, ready_path: str):
        super().__init__(args, env, log)
        self.python, self.base_env = str(python), {"PATH": "/usr/bin:/bin"}  # none of our venv's settings
        self.port, self.ready_path = port, ready_path

    def start(self, timeout: float = 120) -> PeerServer:
        super().start()
        url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        wait_until(lambda: requests.get(url, timeout=1).ok, timeout, url, self.process)
        return self


def check_free(port: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"peer: port {port} on 127.0.0.1 is taken; choose another --port-base") from None
    return port


def gateway_env(grpc_port: int, manifest: Path | None) -> dict[str, str]:
    """Our fallback-only gateway's configuration (the benchmark reads its resize policy from it too)."""
    env = {"FALLBACK_URL": f"grpc://127.0.0.1:{grpc_port}", "FALLBACK_MODEL": "mobilenet_v3_large"}
    if manifest is not None:
        env["FALLBACK_MANIFEST"] = str(manifest)
    return env


def start_ours(
    model: Path, manifest: Path | None, port: int, scratch: Path, cores: int, batching: Path | None
) -> Stack:
    """The fallback-only gateway and our model server as the fallback image runs it: one
    interpreter per core, one thread each, server-side batching with ``batching`` (None: off)."""
    server = ModelServer(
        serve_tflite(scratch, "mobilenet_v3_large", model), "mobilenet_v3_large", scratch / "model-server.log"
    )
    server.grpc_port, server.rest_port = check_free(port + 1), check_free(port + 2)
    server.env.update(
        GRPC_PORT=str(server.grpc_port),
        REST_PORT=str(server.rest_port),
        INTERPRETERS=str(cores),
        INTERPRETER_THREADS="1",
    )
    if batching is not None:
        server.env.update(ENABLE_BATCHING="true", BATCHING_PARAMETERS_FILE=str(batching))
    gateway = Gateway(scratch / "gateway.log", **gateway_env(server.grpc_port, manifest))
    gateway.port = check_free(port)
    gateway.env["PORT"] = str(port)
    stack = Stack("ours", port, {"model-server": server, "gateway": gateway})
    try:
        server.start()
        gateway.start()
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_peer(name: str, role: str, server: PeerServer) -> Stack:
    stack = Stack(name, server.port, {role: server})
    try:
        server.start()
    except BaseException:
        stack.stop()
        raise
    return stack


def start_torch(python: Path, port: int, scratch: Path, workers: int, threads: int) -> Stack:
    """gunicorn with ``workers`` uvicorn workers, torch in each limited to ``threads`` threads with
    OMP_NUM_THREADS (by default each worker's torch uses every core, and the workers fight over them)."""
    gunicorn = ["-m", "gunicorn", "benchmarks.peers.torch_app:app", "-w", str(workers)]
    args = [*gunicorn, "-k", "uvicorn_worker.UvicornWorker", "-b", f"127.0.0.1:{check_free(port)}"]
    server = PeerServer(python, args, {"OMP_NUM_THREADS": str(threads)}, scratch / "torch.log", port, "/docs")
    return _start_peer("torch", "gunicorn", server)


def start_bento(python: Path, model: Path, port: int, scratch: Path) -> Stack:
    args = ["-m", "bentoml", "serve", "benchmarks.peers.bento_service:Classifier", "--host", "127.0.0.1"]
    env = {
        "MODEL_TFLITE": str(model.resolve()),
        "BENTOML_HOME": str(scratch / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    server = PeerServer(python, [*args, "--port", str(check_free(port))], env, scratch / "bento.log", port, "/readyz")
    return _start_peer("bento", "bentoml", server)

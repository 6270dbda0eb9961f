"""Start the project's servers as child processes on 127.0.0.1 (local mode, tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}")
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout} s")


class Service:
    """A child process logging to a file (or to our stdout when ``log`` is None), stopped with
    SIGTERM, then SIGKILL, on exit. It runs ``args`` with this interpreter and this environment
    unless a subclass names another ``python`` and ``base_env``."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path | None):
        self.args, self.env, self.log_path = args, env, log
        self.python: str = sys.executable
        self.base_env: Mapping[str, str] = os.environ
        self.process: subprocess.Popen | None = None
        self._log: BinaryIO | None = None

    def start(self) -> Service:
        self._log = self.log_path.open("ab") if self.log_path else None
        self.process = subprocess.Popen(
            [self.python, *self.args],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            env={**self.base_env, "PYTHONPATH": str(REPO), **self.env},
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log:
            self._log.close()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ModelServer(Service):
    """``client_tls`` (CA, client certificate, key) is how to reach a server run with SSL_CONFIG_FILE."""

    def __init__(
        self, base: Path, name: str, log: Path | None, client_tls: tuple[Path, Path, Path] | None = None, **env: str
    ):
        self.name = name
        self.client_tls = client_tls
        self.grpc_port, self.rest_port = free_port(), free_port()
        super().__init__(
            ["-m", "models.server"],
            {
                "MODEL_NAME": name,
                "MODEL_BASE_PATH": str(base),
                "HOST": "127.0.0.1",
                "GRPC_PORT": str(self.grpc_port),
                "REST_PORT": str(self.rest_port),
                **env,
            },
            log,
        )

    @property
    def rest(self) -> str:
        return f"{'https' if self.client_tls else 'http'}://127.0.0.1:{self.rest_port}"

    def requests_tls(self) -> dict:
        """``verify`` and ``cert`` for requests when the server speaks TLS."""
        if self.client_tls is None:
            return {}
        ca, cert, key = self.client_tls
        return {"verify": str(ca), "cert": (str(cert), str(key))}

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 60) -> ModelServer:
        super().start()
        url = f"{self.rest}/v1/models/{self.name}"

        def available() -> bool:
            versions = requests.get(url, timeout=1, **self.requests_tls()).json().get("model_version_status", [])
            return any(v["state"] == "AVAILABLE" for v in versions)

        wait_until(available, timeout, f"{self.name} AVAILABLE", self.process)
        return self


def serve_tflite(tmp: Path, name: str, tflite: Path, version: int = 1) -> Path:
    """A TF-Serving style base folder holding one .tflite file as <base>/<name>/<version>/model.tflite."""
    folder = tmp / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").symlink_to(tflite.resolve())
    return tmp


class Gateway(Service):
    def __init__(self, log: Path | None, **env: str):
        self.port = free_port()
        super().__init__(["-m", "gateway"], {"HOST": "127.0.0.1", "PORT": str(self.port), **env}, log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Gateway:
        super().start()
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=1).ok, timeout, "gateway alive", self.process)
        return self
